using System.Globalization;
using QwenBatch.Schedules;

namespace QwenBatch.Core.Tests.Schedules;

public sealed class CronScheduleTests
{
    [Theory]
    // Europe/Berlin: CET (+1) → CEST (+2) at 02:00 on 2026-03-29, back at 03:00 on 2026-10-25.
    [InlineData("0 2 * * *", "Europe/Berlin", "2026-01-15T12:00:00Z", "2026-01-16T01:00:00Z")]
    [InlineData("0 2 * * *", "Europe/Berlin", "2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z")] // 02:00 skipped: 03:00 CEST
    [InlineData("0 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z")] // then 02:00 CEST again
    [InlineData("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z")] // 02:30 skipped: once at 03:00
    [InlineData("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z")] // first 02:30 (CEST)
    [InlineData("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z")] // no second 02:30 (CET)
    [InlineData("0 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:00:00Z")]
    // America/New_York: EST (-5) → EDT (-4) at 02:00 on 2026-03-08, back at 02:00 on 2026-11-01.
    [InlineData("0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z")] // 02:00 skipped: 03:00 EDT
    [InlineData("0 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z")]
    [InlineData("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z")] // first 01:30 (EDT)
    [InlineData("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z")] // no second 01:30 (EST)
    [InlineData("0 9 * * 1-5", "America/New_York", "2026-11-06T15:00:00Z", "2026-11-09T14:00:00Z")] // Friday → Monday
    [InlineData("*/15 * * * *", "UTC", "2026-05-01T10:07:00Z", "2026-05-01T10:15:00Z")]
    [InlineData("0 0 1 JAN *", "UTC", "2026-05-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    public void NextAfter_AcrossDaylightSavingChanges_MatchesTable(string cron, string zone, string after, string expected)
    {
        var schedule = CronSchedule.Parse(cron, zone);

        var next = schedule.NextAfter(Instant(after))!.Value;

        next.ShouldBe(Instant(expected));
        next.Offset.ShouldBe(TimeSpan.Zero); // stored as is: PostgreSQL takes only UTC instants
    }

    [Fact]
    public void NextAfter_HourlyOnSpringForwardNight_RunsSkippedHourOnceAtGapEnd()
    {
        var schedule = CronSchedule.Parse("30 * * * *", "Europe/Berlin");

        var first = schedule.NextAfter(Instant("2026-03-29T00:30:00Z"))!.Value; // after 01:30 CET
        var second = schedule.NextAfter(first)!.Value;

        first.ShouldBe(Instant("2026-03-29T01:00:00Z")); // 02:30 does not exist: 03:00 CEST
        second.ShouldBe(Instant("2026-03-29T01:30:00Z")); // 03:30 CEST
    }

    [Fact]
    public void LatestAtOrBefore_AfterThreeDaysDown_ReturnsOnlyTheLastOccurrence()
    {
        var schedule = CronSchedule.Parse("0 2 * * *", "Europe/Berlin");

        schedule.LatestAtOrBefore(Instant("2026-06-10T09:00:00Z"), TimeSpan.FromDays(3)).ShouldBe(Instant("2026-06-10T00:00:00Z"));
    }

    [Theory]
    [InlineData("0 2 * *", "Europe/Berlin", "expected 5")]
    [InlineData("61 2 * * *", "Europe/Berlin", "minute field '61'")]
    [InlineData("0 2 * * MON-XYZ", "Europe/Berlin", "day-of-week field")]
    [InlineData("0 2 * * *", "Mars/Olympus", "Unknown time zone 'Mars/Olympus'")]
    public void Parse_InvalidInput_ThrowsWithClearMessage(string cron, string zone, string message)
    {
        Should.Throw<FormatException>(() => CronSchedule.Parse(cron, zone)).Message.ShouldContain(message);
    }

    [Fact]
    public void NextAfter_ImpossibleDate_ReturnsNull()
    {
        CronSchedule.Parse("0 0 30 2 *", "UTC").NextAfter(Instant("2026-01-01T00:00:00Z")).ShouldBeNull();
    }

    private static DateTimeOffset Instant(string text) => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture);
}

using Hangfire;
using Hangfire.Storage;
using Microsoft.Extensions.DependencyInjection;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Schedules;
using QwenBatch.Hangfire.Tests.Support;
using QwenBatch.Schedules;

namespace QwenBatch.Hangfire.Tests.Schedules;

public sealed class ScheduleTests
{
    private static readonly ScheduleDefinition Nightly = new("banners", "0 2 * * *", "Europe/Berlin", "/manifests/banners.csv", "simulator", "/out");

    [Theory]
    [InlineData("2026-12-07T01:00:04Z", "0 2 * * *", "2026-12-07T01:00:00Z")]
    [InlineData("2026-12-07T01:01:30Z", "0 2 * * *", "2026-12-07T01:00:00Z")]
    [InlineData("2026-03-29T01:00:03Z", "30 2 * * *", "2026-03-29T01:00:00Z")]
    [InlineData("2026-12-07T09:13:41Z", "0 2 * * *", "2026-12-07T09:13:00Z")]
    public void Occurrence_FiringTime_NamesTheOccurrenceItStandsForOrTheMinuteOfALateFiring(string fired, string cron, string expected)
    {
        var occurrence = ScheduleJob.Occurrence(Nightly with { Cron = cron }, DateTimeOffset.Parse(fired, System.Globalization.CultureInfo.InvariantCulture));

        occurrence.ShouldBe(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void BatchName_SpringForwardNight_IsTheLocalTimeTheSkippedOccurrenceRan()
    {
        // 02:30 does not exist in Berlin on 2026-03-29: Cronos runs it at the transition, 03:00 local (01:00 UTC).
        var next = RecurringSchedules.Next(Nightly with { Cron = "30 2 * * *" }, new DateTimeOffset(2026, 3, 28, 12, 0, 0, TimeSpan.Zero))!.Value;

        next.ShouldBe(new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.Zero));
        ScheduleRunner.BatchName(Nightly, next).ShouldBe("banners-20260329-0300");
    }

    [Fact]
    public void Next_AutumnNightWhoseTimeRepeats_RunsOnceAtItsFirstInstant()
    {
        var schedule = Nightly with { Cron = "30 2 * * *" };
        var first = RecurringSchedules.Next(schedule, new DateTimeOffset(2026, 10, 24, 12, 0, 0, TimeSpan.Zero))!.Value;
        var after = RecurringSchedules.Next(schedule, first)!.Value;

        first.ShouldBe(new DateTimeOffset(2026, 10, 25, 0, 30, 0, TimeSpan.Zero));
        after.ShouldBe(new DateTimeOffset(2026, 10, 26, 1, 30, 0, TimeSpan.Zero));
    }

    [Theory]
    [InlineData("0 2 * *", "Europe/Berlin", "is not a 5-field cron expression")]
    [InlineData("0 2 * * *", "Mars/Olympus", "is not a known time zone")]
    public void Parse_BadInput_SaysWhatWasExpected(string cron, string zone, string message) =>
        Should.Throw<FormatException>(() => RecurringSchedules.Parse(cron, zone)).Message.ShouldContain(message);

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Schedule_RegisteredAndFiredByHangfire_MakesOneBatchThatRuns(Backend backend)
    {
        await using var engine = await TestEngine.StartAsync(new EngineSetup(backend));
        var manifest = Path.Combine(engine.Folder, "nightly.csv");
        await File.WriteAllTextAsync(manifest, "id,prompt,images\na,make it blue,https://images.example.test/a.png\nb,make it red,https://images.example.test/b.png\n");
        var schedule = new ScheduleDefinition("nightly", "0 0 1 1 *", "UTC", manifest, "simulator", engine.Output);
        (await engine.Store.AddScheduleAsync(schedule, CancellationToken.None)).ShouldBeTrue();
        await engine.StartServerAsync();

        // The registrar puts it into Hangfire as a recurring job with its cron and zone; Hangfire fires it (a trigger here).
        await engine.Services.GetRequiredService<ScheduleRegistrar>().SyncAsync(CancellationToken.None);
        using (var connection = engine.Storage.GetConnection())
        {
            var recurring = connection.GetRecurringJobs().Single(j => j.Id == "schedule:nightly");
            (recurring.Cron, recurring.TimeZoneId).ShouldBe(("0 0 1 1 *", "UTC"));
        }

        new RecurringJobManager(engine.Storage, engine.Services.GetRequiredService<global::Hangfire.Common.IJobFilterProvider>()).TriggerJob("schedule:nightly");
        var batch = await WaitForBatchAsync(engine, "nightly-");
        var edits = await engine.WaitSettledAsync(batch.Id);

        edits.Count.ShouldBe(2);
        edits.ShouldAllBe(e => e.State == EditState.Succeeded);
        var recorded = (await engine.Store.GetSchedulesAsync(CancellationToken.None)).Single();
        (recorded.LastBatch, recorded.LastError).ShouldBe((batch.Name, null));
    }

    [Fact]
    public async Task Schedule_ManifestInvalidWhenItFires_FailedBatchWithTheErrorsAndTheJobFailedWithoutRetry()
    {
        await using var engine = await TestEngine.StartAsync(new EngineSetup(Backend.Sqlite));
        var manifest = Path.Combine(engine.Folder, "broken.csv");
        await File.WriteAllTextAsync(manifest, "id,prompt,images\na,,https://images.example.test/a.png\n");
        await engine.Store.AddScheduleAsync(new ScheduleDefinition("broken", "0 0 1 1 *", "UTC", manifest, "simulator", engine.Output), CancellationToken.None);
        await engine.StartServerAsync();
        await engine.Services.GetRequiredService<ScheduleRegistrar>().SyncAsync(CancellationToken.None);

        var jobId = new RecurringJobManager(engine.Storage, engine.Services.GetRequiredService<global::Hangfire.Common.IJobFilterProvider>()).TriggerJob("schedule:broken");
        var batch = await WaitForBatchAsync(engine, "broken-");

        batch.Failure.ShouldNotBeNull().ShouldContain("prompt");
        for (var i = 0; i < 100 && engine.JobState(jobId)?.Name != "Failed"; i++)
        {
            await Task.Delay(100);
        }

        engine.JobState(jobId)!.Name.ShouldBe("Failed");
        (await engine.Store.GetSchedulesAsync(CancellationToken.None)).Single().LastError.ShouldNotBeNull();
    }

    private static async Task<QwenBatch.Batches.BatchRecord> WaitForBatchAsync(TestEngine engine, string prefix)
    {
        for (var i = 0; i < 300; i++)
        {
            if ((await engine.Store.GetBatchesAsync(CancellationToken.None)).FirstOrDefault(b => b.Name.StartsWith(prefix, StringComparison.Ordinal)) is { } batch)
            {
                return batch;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"No batch named {prefix}… was made.");
    }
}

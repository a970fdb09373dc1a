using QwenBatch.Schedules;

namespace QwenBatch.Storage.Tests.Schedules;

/// <summary>What every backend's <see cref="IScheduleStore"/> must do: definitions, the paused flag, what each occurrence made.</summary>
public abstract class ScheduleStoreContract : StoreContract
{
    private static ScheduleDefinition Nightly(string name = "nightly", CatchUpPolicy catchUp = CatchUpPolicy.Once) =>
        new(name, "0 2 * * *", "Europe/Berlin", "/manifests/banners.csv", Provider, "/output", 1.5m, catchUp);

    [Fact]
    public async Task AddScheduleAsync_NewThenSameName_StoresOnceWithEveryField()
    {
        (await Store.AddScheduleAsync(Nightly(catchUp: CatchUpPolicy.Skip), Ct)).ShouldBeTrue();
        (await Store.AddScheduleAsync(Nightly(), Ct)).ShouldBeFalse();

        var stored = (await Store.GetSchedulesAsync(Ct)).ShouldHaveSingleItem();
        stored.ShouldBe(new ScheduleRecord(Nightly(catchUp: CatchUpPolicy.Skip), Paused: false, LastRunAt: null, LastBatch: null, LastError: null));
    }

    [Fact]
    public async Task AddScheduleAsync_NoBudget_StoresNone()
    {
        await Store.AddScheduleAsync(Nightly() with { BudgetUsd = null }, Ct);

        (await Store.GetSchedulesAsync(Ct)).Single().Definition.BudgetUsd.ShouldBeNull();
    }

    [Fact]
    public async Task GetSchedulesAsync_SeveralSchedules_ByName()
    {
        await Store.AddScheduleAsync(Nightly("weekly"), Ct);
        await Store.AddScheduleAsync(Nightly("daily"), Ct);

        (await Store.GetSchedulesAsync(Ct)).Select(s => s.Name).ShouldBe(["daily", "weekly"]);
    }

    [Fact]
    public async Task SetSchedulePausedAsync_PauseThenResume_FlipsTheFlagAndKeepsTheDefinition()
    {
        await Store.AddScheduleAsync(Nightly(), Ct);

        (await Store.SetSchedulePausedAsync("nightly", true, Ct)).ShouldBeTrue();
        var paused = (await Store.GetSchedulesAsync(Ct)).Single();
        (await Store.SetSchedulePausedAsync("nightly", false, Ct)).ShouldBeTrue();
        var resumed = (await Store.GetSchedulesAsync(Ct)).Single();

        (paused.Paused, paused.Definition).ShouldBe((true, Nightly()));
        resumed.Paused.ShouldBeFalse();
        (await Store.SetSchedulePausedAsync("missing", true, Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task RecordOccurrenceAsync_ErrorThenBatch_ShowsTheLastOutcome()
    {
        await Store.AddScheduleAsync(Nightly(), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now, Now.AddMinutes(1), "nightly-20260101-0300", "manifest missing"), Ct);
        var failed = (await Store.GetSchedulesAsync(Ct)).Single();

        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now.AddDays(1), Now.AddDays(1).AddMinutes(1), "nightly-20260102-0300", null), Ct);

        (failed.LastError, failed.LastBatch, failed.LastRunAt).ShouldBe(("manifest missing", "nightly-20260101-0300", Now.AddMinutes(1)));
        var succeeded = (await Store.GetSchedulesAsync(Ct)).Single();
        (succeeded.LastError, succeeded.LastBatch, succeeded.LastRunAt).ShouldBe(((string?)null, "nightly-20260102-0300", Now.AddDays(1).AddMinutes(1)));
        (await Store.GetOccurrencesAsync("nightly", Ct)).ShouldBe(
        [
            new ScheduleOutcome("nightly", Now.AddDays(1), Now.AddDays(1).AddMinutes(1), "nightly-20260102-0300", null),
            new ScheduleOutcome("nightly", Now, Now.AddMinutes(1), "nightly-20260101-0300", "manifest missing"),
        ]);
    }

    [Fact]
    public async Task RecordOccurrenceAsync_SameOccurrenceAgain_OverwritesItsRecord()
    {
        // A retried Hangfire job fires the same occurrence again: its batch is resumed, and its record rewritten.
        await Store.AddScheduleAsync(Nightly(), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now, Now.AddMinutes(1), "nightly-20260101-0300", "manifest missing"), Ct);

        await OpenStore().RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now, Now.AddMinutes(9), "nightly-20260101-0300", null), Ct);

        (await Store.GetOccurrencesAsync("nightly", Ct)).ShouldBe([new ScheduleOutcome("nightly", Now, Now.AddMinutes(9), "nightly-20260101-0300", null)]);
        (await Store.GetSchedulesAsync(Ct)).Single().LastError.ShouldBeNull();
    }

    [Fact]
    public async Task RecordOccurrenceAsync_OlderOccurrenceRecordedLate_KeepsTheNewerOneAsLast()
    {
        await Store.AddScheduleAsync(Nightly(), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now.AddDays(1), Now.AddDays(1), "nightly-20260102-0300", null), Ct);

        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now, Now.AddDays(1).AddMinutes(5), "nightly-20260101-0300", "manifest missing"), Ct);

        var schedule = (await Store.GetSchedulesAsync(Ct)).Single();
        (schedule.LastBatch, schedule.LastError).ShouldBe(("nightly-20260102-0300", (string?)null));
        (await Store.GetOccurrencesAsync("nightly", Ct)).Count.ShouldBe(2);
    }

    [Fact]
    public async Task RecordOccurrenceAsync_ScheduleRemovedMeanwhile_RecordsNothing()
    {
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("gone", Now, Now, "gone-20260101-0300", null), Ct);

        (await Store.GetOccurrencesAsync("gone", Ct)).ShouldBeEmpty();
        (await Store.GetSchedulesAsync(Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task RemoveScheduleAsync_WithOccurrences_RemovesScheduleAndOccurrences()
    {
        await Store.AddScheduleAsync(Nightly(), Ct);
        await Store.AddScheduleAsync(Nightly("weekly"), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now, Now, "nightly-20260101-0300", null), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("weekly", Now, Now, "weekly-20260101-0300", null), Ct);

        (await Store.RemoveScheduleAsync("nightly", Ct)).ShouldBeTrue();

        (await Store.GetSchedulesAsync(Ct)).Select(s => s.Name).ShouldBe(["weekly"]);
        (await Store.GetOccurrencesAsync("nightly", Ct)).ShouldBeEmpty();
        (await Store.GetOccurrencesAsync("weekly", Ct)).ShouldHaveSingleItem();
        (await Store.RemoveScheduleAsync("nightly", Ct)).ShouldBeFalse();
    }
}

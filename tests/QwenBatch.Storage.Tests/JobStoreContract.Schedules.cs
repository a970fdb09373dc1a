using QwenBatch.Edits;
using QwenBatch.Schedules;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    private static ScheduleDefinition Nightly(string name = "nightly", CatchUpPolicy catchUp = CatchUpPolicy.Once) =>
        new(name, "0 2 * * *", "Europe/Berlin", "/manifests/banners.csv", Provider, "/output", 1.5m, catchUp);

    [Fact]
    public async Task AddScheduleAsync_NewThenSameName_StoresOnceWithEveryField()
    {
        var next = Now.AddHours(3);

        (await Store.AddScheduleAsync(Nightly(catchUp: CatchUpPolicy.Skip), next, Ct)).ShouldBeTrue();
        (await Store.AddScheduleAsync(Nightly(), next.AddDays(1), Ct)).ShouldBeFalse();

        var stored = (await Store.GetSchedulesAsync(Ct)).ShouldHaveSingleItem();
        stored.Definition.ShouldBe(Nightly(catchUp: CatchUpPolicy.Skip));
        stored.ShouldSatisfyAllConditions(
            () => stored.NextAt.ShouldBe(next),
            () => stored.Paused.ShouldBeFalse(),
            () => stored.LastRunAt.ShouldBeNull(),
            () => stored.LastError.ShouldBeNull());
    }

    [Fact]
    public async Task ClaimOccurrenceAsync_TwoStoresRacing_ExactlyOneWins()
    {
        var occurrence = Now;
        await Store.AddScheduleAsync(Nightly(), occurrence, Ct);
        var stores = new[] { OpenStore(), OpenStore() };

        // Many rounds of both "workers" claiming the same occurrence at once.
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            Task.Run(() => stores[i % 2].ClaimOccurrenceAsync(new OccurrenceClaim("nightly", occurrence, occurrence.AddDays(1), $"worker-{i % 2}", Lease), Ct))));

        results.Count(won => won).ShouldBe(1);
        (await Store.GetOccurrencesAsync("nightly", Ct)).ShouldHaveSingleItem().Occurrence.ShouldBe(occurrence);
        (await Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(occurrence.AddDays(1));
    }

    [Fact]
    public async Task ClaimOccurrenceAsync_StaleNextAt_NeverMovesScheduleBackwards()
    {
        await Store.AddScheduleAsync(Nightly(), Now, Ct);
        (await Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", Now, Now.AddDays(2), Worker, Lease), Ct)).ShouldBeTrue();

        (await Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", Now.AddDays(1), Now.AddDays(1), Worker, Lease), Ct)).ShouldBeTrue();

        (await Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(Now.AddDays(2));
    }

    [Fact]
    public async Task RecordOccurrenceAsync_ErrorThenBatch_ShowsLastOutcome()
    {
        await Store.AddScheduleAsync(Nightly(), Now, Ct);
        await Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", Now, Now.AddDays(1), Worker, Lease), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now, Now, null, "manifest missing"), Ct);

        var failed = (await Store.GetSchedulesAsync(Ct)).Single();
        var run = (await Store.GetOccurrencesAsync("nightly", Ct)).Single();
        await Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", Now.AddDays(1), Now.AddDays(2), Worker, Lease), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now.AddDays(1), Now.AddDays(1), "nightly-20260102-0200", null), Ct);
        var succeeded = (await Store.GetSchedulesAsync(Ct)).Single();

        failed.LastError.ShouldBe("manifest missing");
        run.Error.ShouldBe("manifest missing");
        succeeded.ShouldSatisfyAllConditions(
            () => succeeded.LastError.ShouldBeNull(),
            () => succeeded.LastBatch.ShouldBe("nightly-20260102-0200"),
            () => succeeded.LastRunAt.ShouldBe(Now.AddDays(1)));
    }

    [Fact]
    public async Task ReclaimOccurrencesAsync_ClaimerDiedBeforeRecording_OneOtherTakesOverAfterTheLease()
    {
        await Store.AddScheduleAsync(Nightly(), Now, Ct);
        await Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", Now, Now.AddDays(1), Worker, Lease), Ct);
        var occurrence = Now;

        var whileLeased = await Store.ReclaimOccurrencesAsync(OtherWorker, Lease, 10, Ct);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        var stores = new[] { OpenStore(), OpenStore() };
        var racing = await Task.WhenAll(Enumerable.Range(0, 10).Select(i =>
            Task.Run(() => stores[i % 2].ReclaimOccurrencesAsync($"rescuer-{i}", Lease, 10, Ct))));
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", occurrence, Now, "nightly-20260101-0200", null), Ct);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        var afterRecord = await Store.ReclaimOccurrencesAsync(OtherWorker, Lease, 10, Ct);

        whileLeased.ShouldBeEmpty();
        racing.SelectMany(r => r).ShouldHaveSingleItem().ShouldBe(new AbandonedOccurrence("nightly", occurrence));
        afterRecord.ShouldBeEmpty();
        (await Store.GetOccurrencesAsync("nightly", Ct)).ShouldHaveSingleItem().BatchName.ShouldBe("nightly-20260101-0200");
    }

    [Fact]
    public async Task ReclaimOccurrencesAsync_RecordedWithError_IsFinishedAndNeverReclaimed()
    {
        await Store.AddScheduleAsync(Nightly(), Now, Ct);
        await Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", Now, Now.AddDays(1), Worker, Lease), Ct);
        await Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", Now, Now, "nightly-20260101-0200", "manifest missing"), Ct);
        Time.Advance(TimeSpan.FromDays(1));

        (await Store.ReclaimOccurrencesAsync(OtherWorker, Lease, 10, Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task CreateFailedBatchAsync_SameNameTwice_MakesOneBatchWithNoJobsCarryingTheErrors()
    {
        var failure = "/manifests/banners.csv:2: prompt: is required\n/manifests/banners.csv:3: images: expected 1-3 images";

        var first = await Store.CreateFailedBatchAsync(Batch("nightly-20260101-0200"), failure, Ct);
        var second = await Store.CreateFailedBatchAsync(Batch("nightly-20260101-0200"), "another attempt", Ct);

        second.Id.ShouldBe(first.Id);
        second.Failure.ShouldBe(failure);
        (await Store.GetBatchesAsync(Ct)).ShouldHaveSingleItem().Failure.ShouldBe(failure);
        (await Store.GetBatchAsync(first.Id, Ct))!.StorageDir.ShouldBe("/output/nightly-20260101-0200");
        var progress = await Store.GetProgressAsync(first.Id, Ct);
        progress.ShouldSatisfyAllConditions(() => progress.Total.ShouldBe(0), () => progress.IsSettled.ShouldBeTrue());
        (await ImportAsync(1)).Batch.Failure.ShouldBeNull();
    }

    [Fact]
    public async Task SetSchedulePausedAsync_PauseThenResume_KeepsThenResetsNextAt()
    {
        await Store.AddScheduleAsync(Nightly(), Now, Ct);

        (await Store.SetSchedulePausedAsync("nightly", true, Now.AddDays(9), Ct)).ShouldBeTrue();
        var paused = (await Store.GetSchedulesAsync(Ct)).Single();
        (await Store.SetSchedulePausedAsync("nightly", false, Now.AddDays(5), Ct)).ShouldBeTrue();
        var resumed = (await Store.GetSchedulesAsync(Ct)).Single();

        paused.ShouldSatisfyAllConditions(() => paused.Paused.ShouldBeTrue(), () => paused.NextAt.ShouldBe(Now));
        resumed.ShouldSatisfyAllConditions(() => resumed.Paused.ShouldBeFalse(), () => resumed.NextAt.ShouldBe(Now.AddDays(5)));
        (await Store.SetSchedulePausedAsync("missing", true, Now, Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task RemoveScheduleAsync_WithRuns_RemovesScheduleAndRuns()
    {
        await Store.AddScheduleAsync(Nightly(), Now, Ct);
        await Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", Now, Now.AddDays(1), Worker, Lease), Ct);

        (await Store.RemoveScheduleAsync("nightly", Ct)).ShouldBeTrue();

        (await Store.GetSchedulesAsync(Ct)).ShouldBeEmpty();
        (await Store.GetOccurrencesAsync("nightly", Ct)).ShouldBeEmpty();
        (await Store.RemoveScheduleAsync("nightly", Ct)).ShouldBeFalse();
    }

    [Fact]
    public async Task SkipOccurrencesAsync_ExpectedNextAt_MovesOnlyFromThatValue()
    {
        await Store.AddScheduleAsync(Nightly(), Now, Ct);

        (await Store.SkipOccurrencesAsync("nightly", Now.AddDays(-1), Now.AddDays(3), Ct)).ShouldBeFalse();
        (await Store.SkipOccurrencesAsync("nightly", Now, Now.AddDays(1), Ct)).ShouldBeTrue();

        (await Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(Now.AddDays(1));
        (await Store.GetOccurrencesAsync("nightly", Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task PurgeBatchChunkAsync_OldAndRecentBatches_DeletesOnlyOldFinishedInChunks()
    {
        var old = await ImportAsync(5, "old-finished");
        await Store.RequestCancelAsync(old.Batch.Id, Ct);
        var oldJob = (await Store.GetJobsAsync(old.Batch.Id, Ct))[0];
        var unfinished = await ImportAsync(2, "old-unfinished");
        Time.Advance(TimeSpan.FromDays(31));
        var recent = await ImportAsync(2, "recent-finished");
        await Store.RequestCancelAsync(recent.Batch.Id, Ct);

        var cutoff = Now.AddDays(-30);
        var found = await Store.FindExpiredBatchAsync(cutoff, Ct);
        var steps = new List<Retention.RetentionStep>();
        for (var step = await Store.PurgeBatchChunkAsync(found!.Value, cutoff, 2, Ct); step.DidWork; step = await Store.PurgeBatchChunkAsync(found.Value, cutoff, 2, Ct))
        {
            steps.Add(step);
        }

        found.ShouldBe(old.Batch.Id);
        steps.Select(s => s.JobsDeleted).ShouldBe([2, 2, 1, 0]);
        steps[^1].ShouldSatisfyAllConditions(
            () => steps[^1].BatchDeleted.ShouldBe("old-finished"),
            () => steps[^1].StorageDir.ShouldBe("/output/old-finished"));
        (await Store.FindBatchAsync("old-finished", Ct)).ShouldBeNull();
        (await Store.GetHistoryAsync(oldJob.Id, Ct)).ShouldBeEmpty();
        (await Store.GetJobsAsync(unfinished.Batch.Id, Ct)).Count.ShouldBe(2);
        (await Store.GetJobsAsync(recent.Batch.Id, Ct)).Select(j => j.State).ShouldBe([EditState.Cancelled, EditState.Cancelled]);
        (await Store.GetStateCountsAsync(Ct)).ShouldNotContain(c => c.BatchId == old.Batch.Id);
        (await Store.FindExpiredBatchAsync(cutoff, Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task PurgeBatchChunkAsync_BatchResumedWithNewJob_KeepsNewJobAndBatch()
    {
        var old = await ImportAsync(2, "resumed");
        await Store.RequestCancelAsync(old.Batch.Id, Ct);
        Time.Advance(TimeSpan.FromDays(31));
        var cutoff = Now.AddDays(-30);
        var found = await Store.FindExpiredBatchAsync(cutoff, Ct);
        await Store.ImportBatchAsync(Batch("resumed"), [NewEdit("late-row")], Ct);

        var first = await Store.PurgeBatchChunkAsync(found!.Value, cutoff, 10, Ct);
        var second = await Store.PurgeBatchChunkAsync(found.Value, cutoff, 10, Ct);

        first.JobsDeleted.ShouldBe(2);
        second.DidWork.ShouldBeFalse();
        (await Store.GetJobsAsync(old.Batch.Id, Ct)).ShouldHaveSingleItem().Key.ShouldBe("late-row");
    }
}

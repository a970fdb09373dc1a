using QwenBatch.Edits;
using QwenBatch.Retention;

namespace QwenBatch.Storage.Tests.Retention;

/// <summary>What every backend's <see cref="IRetentionStore"/> must do: finished old batches go a chunk at a time, nothing else.</summary>
public abstract class RetentionStoreContract : StoreContract
{
    [Fact]
    public async Task PurgeBatchChunkAsync_OldAndRecentBatches_DeletesOnlyOldFinishedOnesInChunks()
    {
        var old = await ImportAsync(5, "old-finished");
        await Store.RequestCancelAsync(old.Batch.Id, Ct);
        var oldEdit = (await EditsAsync(old.Batch.Id))[0];
        var unfinished = await ImportAsync(2, "old-unfinished");
        var held = await ImportAsync(1, "old-held", budget: 0.01m);
        await FeedAsync(batchId: held.Batch.Id);
        Time.Advance(TimeSpan.FromDays(31));
        var recent = await ImportAsync(2, "recent-finished");
        await Store.RequestCancelAsync(recent.Batch.Id, Ct);

        var cutoff = Now.AddDays(-30);
        var found = await Store.FindExpiredBatchAsync(cutoff, Ct);
        var steps = new List<RetentionStep>();
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
        (await Store.GetHistoryAsync(oldEdit.Id, Ct)).ShouldBeEmpty();
        (await Store.GetEditsAsync(unfinished.Batch.Id, Ct)).Count.ShouldBe(2);
        (await Store.GetEditsAsync(held.Batch.Id, Ct)).ShouldHaveSingleItem().State.ShouldBe(EditState.Held);
        (await Store.GetEditsAsync(recent.Batch.Id, Ct)).Select(e => e.State).ShouldBe([EditState.Cancelled, EditState.Cancelled]);
        (await Store.GetStateCountsAsync(Ct)).ShouldNotContain(c => c.BatchId == old.Batch.Id);
        (await Store.FindExpiredBatchAsync(cutoff, Ct)).ShouldBeNull("a batch with a held edit is settled but not finished");
    }

    [Fact]
    public async Task FindExpiredBatchAsync_FinishedLongAgoButAnEditWrittenSinceTheCutoff_IsNotExpired()
    {
        var edits = await ImportEditsAsync(2, "old");
        await PutAsync(edits[0], EditState.Succeeded);
        Time.Advance(TimeSpan.FromDays(31));
        await PutAsync(edits[1], EditState.Failed);

        (await Store.FindExpiredBatchAsync(Now.AddDays(-30), Ct)).ShouldBeNull();
        Time.Advance(TimeSpan.FromDays(31));
        (await Store.FindExpiredBatchAsync(Now.AddDays(-30), Ct)).ShouldBe(edits[0].BatchId);
    }

    [Fact]
    public async Task PurgeBatchChunkAsync_BatchResumedWithANewEdit_KeepsTheNewEditAndTheBatch()
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
        (await Store.GetEditsAsync(old.Batch.Id, Ct)).ShouldHaveSingleItem().Key.ShouldBe("late-row");
    }
}

using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Batches;

/// <summary>A changed manifest row: its new edit supersedes the old edit of the same id (one current edit per id).</summary>
public abstract partial class BatchStoreContract
{
    [Fact]
    public async Task ImportBatchAsync_ChangedRow_NewEditSupersedesAndCancelsThePendingOldOne()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a"), NewEdit("b")], Ct);
        var oldB = (await Store.GetEditsAsync(first.Batch.Id, Ct)).Single(e => e.Key == "b");
        Time.Advance(TimeSpan.FromMinutes(1));

        var again = await Store.ImportBatchAsync(Batch(), [NewEdit("a"), NewEdit("b", hash: "h2"), NewEdit("c")], Ct);

        again.Resumed.ShouldBeTrue();
        (again.JobsAdded, again.JobsReplaced).ShouldBe((2, 1));
        var edits = await Store.GetEditsAsync(first.Batch.Id, Ct);
        edits.Select(e => (e.Key, e.ContentHash)).ShouldBe([("a", "h1"), ("b", "h1"), ("b", "h2"), ("c", "h1")]);
        var newB = edits.Single(e => e.Key == "b" && e.ContentHash == "h2");
        (newB.State, newB.Revision, newB.Replaces, newB.SupersededBy).ShouldBe((EditState.Pending, 2, oldB.Id, (long?)null));
        var old = await GetAsync(oldB.Id);
        (old.State, old.SupersededBy, old.FinishedAt).ShouldBe((EditState.Cancelled, newB.Id, Now));
        old.Error.ShouldBe($"superseded by job {newB.Id}: its manifest row changed before it was submitted");
        var last = (await Store.GetHistoryAsync(oldB.Id, Ct))[^1];
        (last.From, last.To).ShouldBe((EditState.Pending, EditState.Cancelled));
        last.Reason.ShouldBe($"superseded by job {newB.Id}: its manifest row changed, so it will not be submitted");
        edits.Where(e => e.Key != "b").ShouldAllBe(e => e.Revision == 1 && e.Replaces == null && e.SupersededBy == null);
    }

    [Fact]
    public async Task ImportBatchAsync_ChangedRowOfAQueuedEdit_OldEditKeepsGoingWithItsReservation()
    {
        var queued = (await QueueAsync(1))[0];

        var again = await Store.ImportBatchAsync(Batch(), [NewEdit(queued.Key, hash: "h2")], Ct);

        again.JobsReplaced.ShouldBe(1);
        var old = await GetAsync(queued.Id);
        var replacement = (await Store.GetEditsAsync(queued.BatchId, Ct)).Single(e => e.Id != queued.Id);
        (old.State, old.ReservedUsd, old.SupersededBy).ShouldBe((EditState.Queued, EditCost, replacement.Id));
        (await Store.GetHistoryAsync(old.Id, Ct))[^1].Reason.ShouldBe($"superseded by job {replacement.Id}: its manifest row changed; it finishes and keeps its files");
        (replacement.State, replacement.Revision, replacement.Replaces).ShouldBe((EditState.Pending, 2, queued.Id));
        (await Store.GetBatchAsync(queued.BatchId, Ct))!.ReservedUsd.ShouldBe(EditCost);
    }

    [Fact]
    public async Task ImportBatchAsync_ChangedRowOfAnEditAtTheProvider_OldEditKeepsRunning()
    {
        var edit = (await ImportEditsAsync(1))[0];
        var running = await PutAsync(edit with { RequestId = "req-1" }, EditState.AtProvider);

        var again = await Store.ImportBatchAsync(Batch(), [NewEdit(running.Key, hash: "h2")], Ct);

        again.JobsReplaced.ShouldBe(1);
        var old = await GetAsync(running.Id);
        var replacement = (await Store.GetEditsAsync(running.BatchId, Ct)).Single(e => e.Id != running.Id);
        (old.State, old.RequestId, old.SupersededBy, old.Error).ShouldBe((EditState.AtProvider, "req-1", replacement.Id, (string?)null));
        (replacement.State, replacement.Revision, replacement.Replaces).ShouldBe((EditState.Pending, 2, running.Id));
    }

    [Fact]
    public async Task ImportBatchAsync_ChangedTwice_EachRevisionReplacesThePreviousOne()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);
        await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h2")], Ct);

        var third = await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h3")], Ct);

        (third.JobsAdded, third.JobsReplaced).ShouldBe((1, 1));
        var edits = await EditsAsync(first.Batch.Id);
        edits.Select(e => (e.ContentHash, e.Revision, e.State)).ShouldBe([("h1", 1, EditState.Cancelled), ("h2", 2, EditState.Cancelled), ("h3", 3, EditState.Pending)]);
        edits.Select(e => e.SupersededBy).ShouldBe([edits[1].Id, edits[2].Id, null]);
        edits.Select(e => e.Replaces).ShouldBe([null, edits[0].Id, edits[1].Id]);
    }

    [Fact]
    public async Task ImportBatchAsync_RowChangedBack_TheOlderEditIsCurrentAgainAndDue()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);
        await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h2")], Ct);
        Time.Advance(TimeSpan.FromMinutes(1));

        var back = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);

        (back.JobsAdded, back.JobsReplaced).ShouldBe((1, 1));
        var edits = await EditsAsync(first.Batch.Id);
        edits.Count.ShouldBe(2);
        (edits[0].State, edits[0].SupersededBy, edits[0].Replaces, edits[0].Error, edits[0].DueAt).ShouldBe((EditState.Pending, (long?)null, edits[1].Id, (string?)null, Now));
        (edits[1].State, edits[1].SupersededBy).ShouldBe((EditState.Cancelled, edits[0].Id));
        (await Store.GetHistoryAsync(edits[0].Id, Ct))[^1].Reason.ShouldBe($"current again: its manifest row is back to this content (replacing job {edits[1].Id})");

        var same = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);
        (same.JobsAdded, same.JobsReplaced).ShouldBe((0, 0));
    }

    [Fact]
    public async Task ImportBatchAsync_DuplicateIdInANewBatch_ThrowsAndImportsNothing()
    {
        await Should.ThrowAsync<DuplicateJobKeyException>(() => Store.ImportBatchAsync(Batch(), [NewEdit("a"), NewEdit("b"), NewEdit("a", hash: "h2")], Ct));

        (await Store.FindBatchAsync("spring-catalog", Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task ImportBatchAsync_DuplicateIdFarIntoANewBatch_ThrowsAndImportsNothing()
    {
        var edits = NewEdits(40).Append(NewEdit("row-0003", hash: "h2"));

        await Should.ThrowAsync<DuplicateJobKeyException>(() => Store.ImportBatchAsync(Batch(), edits, Ct));

        (await Store.FindBatchAsync("spring-catalog", Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task ImportBatchAsync_DuplicateIdOnAResume_ThrowsAndChangesNothing()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);

        await Should.ThrowAsync<DuplicateJobKeyException>(() => Store.ImportBatchAsync(Batch(), [NewEdit("a"), NewEdit("b"), NewEdit("b", hash: "h2")], Ct));

        var edits = await Store.GetEditsAsync(first.Batch.Id, Ct);
        edits.Select(e => (e.Key, e.State, e.SupersededBy)).ShouldBe([("a", EditState.Pending, (long?)null)]);
    }
}

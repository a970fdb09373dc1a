using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests;

/// <summary>A changed manifest row: its new job supersedes the old job of the same id (one current job per id).</summary>
public abstract partial class JobStoreContract
{
    [Fact]
    public async Task ImportBatchAsync_ChangedRow_NewJobSupersedesAndCancelsThePendingOldOne()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a"), NewEdit("b")], Ct);
        var oldB = (await Store.GetJobsAsync(first.Batch.Id, Ct)).Single(j => j.Key == "b");
        Time.Advance(TimeSpan.FromMinutes(1));

        var again = await Store.ImportBatchAsync(Batch(), [NewEdit("a"), NewEdit("b", hash: "h2"), NewEdit("c")], Ct);

        again.Resumed.ShouldBeTrue();
        again.JobsAdded.ShouldBe(2);
        again.JobsReplaced.ShouldBe(1);
        var jobs = await Store.GetJobsAsync(first.Batch.Id, Ct);
        jobs.Select(j => (j.Key, j.ContentHash)).ShouldBe([("a", "h1"), ("b", "h1"), ("b", "h2"), ("c", "h1")]);
        var newB = jobs.Single(j => j.Key == "b" && j.ContentHash == "h2");
        (newB.State, newB.Revision, newB.Replaces, newB.SupersededBy).ShouldBe((EditState.Pending, 2, oldB.Id, (long?)null));
        var old = await GetAsync(oldB.Id);
        (old.State, old.SupersededBy, old.FinishedAt).ShouldBe((EditState.Cancelled, newB.Id, Now));
        old.Error.ShouldBe($"superseded by job {newB.Id}: its manifest row changed before it was submitted");
        var last = (await Store.GetHistoryAsync(oldB.Id, Ct))[^1];
        (last.From, last.To).ShouldBe((EditState.Pending, EditState.Cancelled));
        last.Reason.ShouldBe($"superseded by job {newB.Id}: its manifest row changed, so it will not be submitted");
        jobs.Where(j => j.Key != "b").ShouldAllBe(j => j.Revision == 1 && j.Replaces == null && j.SupersededBy == null);
    }

    [Fact]
    public async Task ImportBatchAsync_ChangedRowOfAJobAtTheProvider_OldJobKeepsRunning()
    {
        var claimed = await ImportAndClaimAsync(1);
        var running = await PutAsync(claimed[0] with { RequestId = "req-1" }, EditState.AtProvider, keepLease: false);

        var again = await Store.ImportBatchAsync(Batch(), [NewEdit(running.Key, hash: "h2")], Ct);

        again.JobsReplaced.ShouldBe(1);
        var old = await GetAsync(running.Id);
        var replacement = (await Store.GetJobsAsync(running.BatchId, Ct)).Single(j => j.Id != running.Id);
        (old.State, old.RequestId, old.SupersededBy, old.Error).ShouldBe((EditState.AtProvider, "req-1", replacement.Id, (string?)null));
        (await Store.GetHistoryAsync(old.Id, Ct))[^1].Reason.ShouldBe($"superseded by job {replacement.Id}: its manifest row changed; it finishes and keeps its files");
        (replacement.State, replacement.Revision, replacement.Replaces).ShouldBe((EditState.Pending, 2, running.Id));
    }

    [Fact]
    public async Task ImportBatchAsync_ChangedTwice_EachRevisionReplacesThePreviousOne()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);
        await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h2")], Ct);

        var third = await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h3")], Ct);

        (third.JobsAdded, third.JobsReplaced).ShouldBe((1, 1));
        var jobs = (await Store.GetJobsAsync(first.Batch.Id, Ct)).OrderBy(j => j.Id).ToList();
        jobs.Select(j => (j.ContentHash, j.Revision, j.State)).ShouldBe([("h1", 1, EditState.Cancelled), ("h2", 2, EditState.Cancelled), ("h3", 3, EditState.Pending)]);
        jobs.Select(j => j.SupersededBy).ShouldBe([jobs[1].Id, jobs[2].Id, null]);
        jobs.Select(j => j.Replaces).ShouldBe([null, jobs[0].Id, jobs[1].Id]);
    }

    [Fact]
    public async Task ImportBatchAsync_RowChangedBack_TheOlderJobIsCurrentAgainAndDue()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);
        await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h2")], Ct);
        Time.Advance(TimeSpan.FromMinutes(1));

        var back = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);

        (back.JobsAdded, back.JobsReplaced).ShouldBe((1, 1));
        var jobs = (await Store.GetJobsAsync(first.Batch.Id, Ct)).OrderBy(j => j.Id).ToList();
        jobs.Count.ShouldBe(2);
        (jobs[0].State, jobs[0].SupersededBy, jobs[0].Replaces, jobs[0].Error, jobs[0].DueAt).ShouldBe((EditState.Pending, (long?)null, jobs[1].Id, (string?)null, Now));
        (jobs[1].State, jobs[1].SupersededBy).ShouldBe((EditState.Cancelled, jobs[0].Id));
        (await Store.GetHistoryAsync(jobs[0].Id, Ct))[^1].Reason.ShouldBe($"current again: its manifest row is back to this content (replacing job {jobs[1].Id})");

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
    public async Task ImportBatchAsync_NewBatchOfAnOddCount_EveryJobStoredInOrderWithItsOwnFields()
    {
        // 37 jobs: more than one statement's worth where a store writes several rows a statement, and a remainder.
        var import = await Store.ImportBatchAsync(Batch(), NewJobs(37), Ct);

        import.JobsAdded.ShouldBe(37);
        var jobs = (await Store.GetJobsAsync(import.Batch.Id, Ct)).OrderBy(j => j.Id).ToList();
        jobs.Select(j => j.Key).ShouldBe(NewJobs(37).Select(j => j.Key));
        jobs.ShouldAllBe(j => j.State == EditState.Pending && j.ContentHash == "h1" && j.Provider == Provider);
        jobs.Select(j => j.Spec.Prompt).ShouldBe(NewJobs(37).Select(j => j.Spec.Prompt));
        jobs[36].Spec.Variables["sku"].ShouldBe("ROW-0037");
    }

    [Fact]
    public async Task ImportBatchAsync_DuplicateIdFarIntoANewBatch_ThrowsAndImportsNothing()
    {
        var jobs = NewJobs(40).Append(NewEdit("row-0003", hash: "h2"));

        await Should.ThrowAsync<DuplicateJobKeyException>(() => Store.ImportBatchAsync(Batch(), jobs, Ct));

        (await Store.FindBatchAsync("spring-catalog", Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task ImportBatchAsync_DuplicateIdOnAResume_ThrowsAndChangesNothing()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);

        await Should.ThrowAsync<DuplicateJobKeyException>(() => Store.ImportBatchAsync(Batch(), [NewEdit("a"), NewEdit("b"), NewEdit("b", hash: "h2")], Ct));

        var jobs = await Store.GetJobsAsync(first.Batch.Id, Ct);
        jobs.Select(j => (j.Key, j.State, j.SupersededBy)).ShouldBe([("a", EditState.Pending, (long?)null)]);
    }

    [Fact]
    public async Task RequeueAsync_SupersededJob_StaysCancelled()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);
        await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h2")], Ct);

        (await Store.RequeueAsync(first.Batch.Id, [EditState.Cancelled], Ct)).ShouldBe(0);

        (await Store.GetJobsAsync(first.Batch.Id, Ct)).Select(j => j.State).ShouldBe([EditState.Cancelled, EditState.Pending]);
    }
}

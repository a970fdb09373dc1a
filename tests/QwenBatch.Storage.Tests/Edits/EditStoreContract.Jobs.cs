using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Edits;

/// <summary>The edits' Hangfire jobs: bindings, a lost Hangfire storage, edits that stood still, and when work is due next.</summary>
public abstract partial class EditStoreContract
{
    [Fact]
    public async Task BindJobsAsync_EditsWithoutAJob_BindsEachToItsJob()
    {
        var edits = await QueueAsync(3);
        Time.Advance(TimeSpan.FromSeconds(2));

        var bound = await Store.BindJobsAsync([new JobBinding(edits[0].Id, "hf-1"), new JobBinding(edits[2].Id, "hf-3")], Ct);

        bound.ShouldBe(2);
        (await GetAsync(edits[0].Id)).ShouldSatisfyAllConditions(e => e.HangfireJob.ShouldBe("hf-1"), e => e.UpdatedAt.ShouldBe(Now));
        (await GetAsync(edits[1].Id)).HangfireJob.ShouldBeNull();
        (await GetAsync(edits[2].Id)).HangfireJob.ShouldBe("hf-3");
    }

    [Fact]
    public async Task BindJobsAsync_EditAlreadyBoundToAnotherJob_KeepsItsJob()
    {
        var edit = (await QueueAsync(1))[0];
        await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-1")], Ct);

        var again = await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-2")], Ct);
        var wrongReplaced = await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-3", Replacing: "hf-9")], Ct);

        (again, wrongReplaced).ShouldBe((0, 0));
        (await GetAsync(edit.Id)).HangfireJob.ShouldBe("hf-1");
    }

    [Fact]
    public async Task BindJobsAsync_ReplacingTheEditsJob_BindsTheNewOne()
    {
        var edit = (await QueueAsync(1))[0];
        await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-1")], Ct);

        (await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-2", Replacing: "hf-1")], Ct)).ShouldBe(1);

        (await GetAsync(edit.Id)).HangfireJob.ShouldBe("hf-2");
    }

    [Fact]
    public async Task BindJobsAsync_TwoProcessesBindingOneEdit_OnlyOneJobWins()
    {
        var edits = await QueueAsync(20);
        var stores = new[] { OpenStore(), OpenStore() };

        var bound = await Task.WhenAll(stores.Select((s, i) => Task.Run(() => s.BindJobsAsync([.. edits.Select(e => new JobBinding(e.Id, $"hf-{i}-{e.Id}"))], Ct))));

        bound.Sum().ShouldBe(20);
        foreach (var edit in edits)
        {
            (await GetAsync(edit.Id)).HangfireJob.ShouldBeOneOf($"hf-0-{edit.Id}", $"hf-1-{edit.Id}");
        }
    }

    [Fact]
    public async Task ForgetJobsAsync_QueuedEdit_ReturnsToPendingWithItsReservationReleasedAndNoJob()
    {
        var edits = await QueueAsync(2);
        await Store.BindJobsAsync([new JobBinding(edits[0].Id, "hf-1"), new JobBinding(edits[1].Id, "hf-2")], Ct);
        Time.Advance(TimeSpan.FromMinutes(1));

        (await Store.ForgetJobsAsync(null, "run-42", Ct)).ShouldBe(2);

        var forgotten = await GetAsync(edits[0].Id);
        (forgotten.State, forgotten.HangfireJob, forgotten.ReservedUsd, forgotten.UncertainSubmits, forgotten.DueAt).ShouldBe((EditState.Pending, (string?)null, 0m, 0, edits[0].DueAt));
        (await Store.GetBatchAsync(edits[0].BatchId, Ct))!.ReservedUsd.ShouldBe(0m);
        var last = (await Store.GetHistoryAsync(edits[0].Id, Ct))[^1];
        (last.From, last.To, last.ServerId, last.At).ShouldBe((EditState.Queued, EditState.Pending, "run-42", Now));
        last.Reason.ShouldNotBeNull().ShouldContain("Hangfire job was lost");
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task ForgetJobsAsync_EditCaughtSubmitting_ReturnsToPendingCountingAnUncertainSubmit()
    {
        var edit = (await QueueAsync(1))[0];
        await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-1")], Ct);
        await PutAsync(edit, EditState.Submitting);

        (await Store.ForgetJobsAsync(null, "run-42", Ct)).ShouldBe(1);

        var forgotten = await GetAsync(edit.Id);
        (forgotten.State, forgotten.UncertainSubmits, forgotten.ReservedUsd, forgotten.HangfireJob).ShouldBe((EditState.Pending, 1, 0m, (string?)null));
        (await Store.GetHistoryAsync(edit.Id, Ct))[^1].Reason.ShouldNotBeNull().ShouldContain("the submit may have reached the provider");
        (await Store.GetBatchAsync(edit.BatchId, Ct))!.ReservedUsd.ShouldBe(0m);
    }

    [Fact]
    public async Task ForgetJobsAsync_EditsAtTheProviderDownloadingOrSettled_KeepTheirStateAndOnlyUnsettledOnesForgetTheJob()
    {
        var edits = await QueueAsync(4);
        await Store.BindJobsAsync([.. edits.Select(e => new JobBinding(e.Id, $"hf-{e.Id}"))], Ct);
        var atProvider = await PutAsync(edits[0] with { RequestId = "req-1", DueAt = Now.AddMinutes(3) }, EditState.AtProvider);
        var downloading = await PutAsync(edits[1], EditState.Downloading);
        await PutAsync(edits[2] with { ReservedUsd = 0m }, EditState.Succeeded);
        var pendingWithoutJob = (await ImportEditsAsync(1, "other"))[0];
        Time.Advance(TimeSpan.FromMinutes(1));

        (await Store.ForgetJobsAsync(null, "run-42", Ct)).ShouldBe(3);

        (await GetAsync(atProvider.Id)).ShouldSatisfyAllConditions(
            e => e.State.ShouldBe(EditState.AtProvider), e => e.RequestId.ShouldBe("req-1"), e => e.DueAt.ShouldBe(atProvider.DueAt),
            e => e.HangfireJob.ShouldBeNull(), e => e.UpdatedAt.ShouldBe(atProvider.UpdatedAt));
        (await GetAsync(downloading.Id)).ShouldSatisfyAllConditions(e => e.State.ShouldBe(EditState.Downloading), e => e.HangfireJob.ShouldBeNull());
        (await GetAsync(edits[2].Id)).HangfireJob.ShouldBe($"hf-{edits[2].Id}");
        (await GetAsync(edits[3].Id)).State.ShouldBe(EditState.Pending);
        ShouldBeUnchanged(await GetAsync(pendingWithoutJob.Id), pendingWithoutJob);
        await AssertReservationsMatchAsync();
    }

    [Fact]
    public async Task ForgetJobsAsync_OneBatch_LeavesTheOthers()
    {
        var mine = (await QueueAsync(1, "mine"))[0];
        var theirs = (await QueueAsync(1, "theirs"))[0];

        (await Store.ForgetJobsAsync(mine.BatchId, "run-42", Ct)).ShouldBe(1);

        (await GetAsync(mine.Id)).State.ShouldBe(EditState.Pending);
        (await GetAsync(theirs.Id)).State.ShouldBe(EditState.Queued);
    }

    [Fact]
    public async Task FindStillAsync_EditsNotWrittenSinceTheCutoff_OldestWriteFirstWithinTheLimit()
    {
        var edits = await QueueAsync(5);
        Time.Advance(TimeSpan.FromMinutes(1));
        var submitting = await PutAsync(edits[0], EditState.Submitting);
        Time.Advance(TimeSpan.FromMinutes(1));
        var downloading = await PutAsync(edits[1], EditState.Downloading);
        await PutAsync(edits[2], EditState.AtProvider);
        Time.Advance(TimeSpan.FromMinutes(1));
        await PutAsync(edits[3], EditState.Submitting);

        var still = await Store.FindStillAsync(new StillQuery([EditState.Queued, EditState.Submitting, EditState.Downloading], Now.AddSeconds(-30), 10), Ct);
        var limited = await Store.FindStillAsync(new StillQuery([EditState.Queued, EditState.Submitting, EditState.Downloading], Now.AddSeconds(-30), 2), Ct);
        var submits = await Store.FindStillAsync(new StillQuery([EditState.Submitting], Now.AddSeconds(-30), 10), Ct);

        still.Select(e => e.Id).ShouldBe([edits[4].Id, submitting.Id, downloading.Id]);
        limited.Select(e => e.Id).ShouldBe([edits[4].Id, submitting.Id]);
        submits.ShouldHaveSingleItem().UpdatedAt.ShouldBe(submitting.UpdatedAt);
    }

    [Fact]
    public async Task FindStillAsync_OneBatch_OnlyItsEdits()
    {
        var mine = (await QueueAsync(1, "mine"))[0];
        await QueueAsync(1, "theirs");
        Time.Advance(TimeSpan.FromMinutes(5));

        var still = await Store.FindStillAsync(new StillQuery([EditState.Queued], Now, 10, mine.BatchId), Ct);

        still.ShouldHaveSingleItem().Id.ShouldBe(mine.Id);
    }

    [Fact]
    public async Task NextDueAsync_NoEdits_ReturnsNothingDue()
    {
        (await Store.NextDueAsync(null, Ct)).ShouldBe(new NextDue(null, null));
    }

    [Fact]
    public async Task NextDueAsync_PendingAndAtProvider_EarliestOfEach()
    {
        var edits = await ImportEditsAsync(6);
        var start = Now;
        await PutAsync(edits[0], EditState.Pending, dueAt: start.AddMinutes(7));
        await PutAsync(edits[1], EditState.AtProvider, dueAt: start.AddMinutes(3));
        await PutAsync(edits[2], EditState.AtProvider, dueAt: start.AddMinutes(5));
        await PutAsync(edits[3], EditState.Queued, dueAt: start.AddMinutes(1));
        await PutAsync(edits[4], EditState.Failed, dueAt: start.AddMinutes(1));
        await PutAsync(edits[5], EditState.Pending, dueAt: start.AddMinutes(9));

        (await Store.NextDueAsync(null, Ct)).ShouldBe(new NextDue(start.AddMinutes(7), start.AddMinutes(3)));
    }

    [Fact]
    public async Task NextDueAsync_WithBatchId_ConsidersOnlyThatBatch()
    {
        var spring = await ImportAsync(1, "spring");
        Time.Advance(TimeSpan.FromMinutes(1));
        var autumn = await ImportAsync(1, "autumn");
        var springDue = Now.AddMinutes(-1);

        (await Store.NextDueAsync(autumn.Batch.Id, Ct)).Pending.ShouldBe(Now);
        (await Store.NextDueAsync(spring.Batch.Id, Ct)).Pending.ShouldBe(springDue);
        (await Store.NextDueAsync(null, Ct)).Pending.ShouldBe(springDue);
        (await Store.NextDueAsync(autumn.Batch.Id + spring.Batch.Id + 1000, Ct)).ShouldBe(new NextDue(null, null));
    }
}

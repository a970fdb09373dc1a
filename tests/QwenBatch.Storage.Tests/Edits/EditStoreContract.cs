using QwenBatch.Edits;
using QwenBatch.Outputs;

namespace QwenBatch.Storage.Tests.Edits;

/// <summary>What every backend's <see cref="IEditStore"/> must do: reads and guarded transitions (this file), job bindings, polls and bulk moves.</summary>
public abstract partial class EditStoreContract : StoreContract
{
    [Fact]
    public async Task GetEditAsync_UnknownId_ReturnsNull()
    {
        (await Store.GetEditAsync(98765, Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task GetEditsAsync_Batch_ReturnsItsEditsInKeyOrder()
    {
        var import = await Store.ImportBatchAsync(Batch(), [NewEdit("c"), NewEdit("a"), NewEdit("d"), NewEdit("b")], Ct);
        await ImportAsync(2, "other");

        var edits = await Store.GetEditsAsync(import.Batch.Id, Ct);

        edits.Select(e => e.Key).ShouldBe(["a", "b", "c", "d"]);
        edits.ShouldAllBe(e => e.BatchId == import.Batch.Id);
    }

    [Fact]
    public async Task TransitionManyAsync_ExpectedState_WritesEveryColumnAStepMayChange()
    {
        var edit = (await QueueAsync(1))[0];
        Time.Advance(TimeSpan.FromSeconds(7));
        var next = edit with
        {
            State = EditState.Downloading,
            RequestId = "req-7f3a",
            Attempt = 2,
            AcceptedSubmits = 1,
            UncertainSubmits = 3,
            Polls = 4,
            DueAt = Now.AddSeconds(90),
            Outputs = [new ProviderOutput("https://cdn.example/out/1.png", null, "image/png"), new ProviderOutput(null, "aGVsbG8=", "image/webp", HasNsfw: true)],
            Files = [new OutputFile("row-0001/1.png", new string('a', 64), 1234), new OutputFile("row-0001/2.webp", new string('b', 64), 5678)],
            CostUsd = 0.04m,
            ReservedUsd = 0m,
            Error = "provider said 503 once",
            SubmittedAt = Now.AddSeconds(1.5),
            StartedAt = Now.AddSeconds(1.75),
            FinishedAt = Now.AddSeconds(2.25),
        };

        (await MoveAsync(edit, next)).ShouldBeTrue();

        var stored = await GetAsync(edit.Id);
        ShouldBeUnchanged(stored, next with { UpdatedAt = Now });
        stored.StartedAt.ShouldBe(Now.AddSeconds(1.75));
        (stored.Key, stored.Provider, stored.BatchId, stored.CreatedAt).ShouldBe((edit.Key, edit.Provider, edit.BatchId, edit.CreatedAt));
    }

    [Fact]
    public async Task TransitionManyAsync_NullsAndEmptyLists_ClearTheColumns()
    {
        var edit = (await ImportEditsAsync(1))[0];
        var filled = edit with
        {
            State = EditState.AtProvider,
            RequestId = "req-1",
            Outputs = [new ProviderOutput("https://cdn.example/1.png", null, null)],
            Files = [new OutputFile("a.png", new string('c', 64), 1)],
            Error = "boom",
            SubmittedAt = Now,
            StartedAt = Now,
            FinishedAt = Now,
        };
        (await MoveAsync(edit, filled)).ShouldBeTrue();

        var cleared = filled with { State = EditState.Pending, RequestId = null, Outputs = [], Files = [], Error = null, SubmittedAt = null, StartedAt = null, FinishedAt = null };
        (await MoveAsync(filled, cleared)).ShouldBeTrue();

        var stored = await GetAsync(edit.Id);
        (stored.RequestId, stored.Error, stored.SubmittedAt, stored.StartedAt, stored.FinishedAt).ShouldBe((null, null, null, null, null));
        stored.Outputs.ShouldBeEmpty();
        stored.Files.ShouldBeEmpty();
    }

    [Fact]
    public async Task TransitionManyAsync_WrongState_MissesAndChangesNothing()
    {
        var edit = (await QueueAsync(1))[0];
        var stored = await GetAsync(edit.Id);
        var before = await Store.GetHistoryAsync(edit.Id, Ct);
        Time.Advance(TimeSpan.FromSeconds(1));

        var moved = await Store.TransitionManyAsync([new EditTransition(edit with { State = EditState.Downloading, RequestId = "req-1" }, [EditState.AtProvider, EditState.Submitting], Server, "poll done")], Ct);

        moved.ShouldBe([false]);
        ShouldBeUnchanged(await GetAsync(edit.Id), stored);
        (await Store.GetHistoryAsync(edit.Id, Ct)).ShouldBe(before);
    }

    [Fact]
    public async Task TransitionManyAsync_AnyOfSeveralExpectedStates_Applies()
    {
        var edit = (await QueueAsync(1))[0];

        var moved = await Store.TransitionManyAsync([new EditTransition(edit with { State = EditState.Failed }, [EditState.Submitting, EditState.Queued], Server, "gave up")], Ct);

        moved.ShouldBe([true]);
        (await GetAsync(edit.Id)).State.ShouldBe(EditState.Failed);
    }

    [Fact]
    public async Task TransitionManyAsync_RecordWithAnotherHangfireJob_NeverWritesTheJob()
    {
        var edit = (await QueueAsync(1))[0];
        (await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-1")], Ct)).ShouldBe(1);

        (await MoveAsync(edit, edit with { State = EditState.Submitting, HangfireJob = "hf-forged" })).ShouldBeTrue();

        (await GetAsync(edit.Id)).HangfireJob.ShouldBe("hf-1");
    }

    [Fact]
    public async Task TransitionManyAsync_StateChanges_WritesHistoryByTheMoverAtTheStoreClock()
    {
        var edit = (await QueueAsync(1))[0];
        Time.Advance(TimeSpan.FromSeconds(3));

        (await MoveAsync(edit, edit with { State = EditState.Submitting }, by: "hangfire-server-7")).ShouldBeTrue();

        (await Store.GetHistoryAsync(edit.Id, Ct))[^1].ShouldBe(new EditHistoryEntry(edit.Id, Now, EditState.Queued, EditState.Submitting, null, "hangfire-server-7"));
        (await GetAsync(edit.Id)).UpdatedAt.ShouldBe(Now);
    }

    [Fact]
    public async Task TransitionManyAsync_SameStateWithReason_WritesHistory()
    {
        var edit = await PutAsync((await ImportEditsAsync(1))[0], EditState.AtProvider);
        var before = (await Store.GetHistoryAsync(edit.Id, Ct)).Count;

        (await MoveAsync(edit, edit with { Polls = 1 }, reason: "still running")).ShouldBeTrue();

        var history = await Store.GetHistoryAsync(edit.Id, Ct);
        history.Count.ShouldBe(before + 1);
        history[^1].ShouldBe(new EditHistoryEntry(edit.Id, Now, EditState.AtProvider, EditState.AtProvider, "still running", Server));
    }

    [Fact]
    public async Task TransitionManyAsync_SameStateWithoutReason_WritesNoHistory()
    {
        var edit = await PutAsync((await ImportEditsAsync(1))[0], EditState.AtProvider);
        var before = await Store.GetHistoryAsync(edit.Id, Ct);

        (await MoveAsync(edit, edit with { Polls = 1 })).ShouldBeTrue();

        (await Store.GetHistoryAsync(edit.Id, Ct)).ShouldBe(before);
        (await GetAsync(edit.Id)).Polls.ShouldBe(1);
    }

    [Fact]
    public async Task TransitionManyAsync_SeveralTransitions_HistoryInOrder()
    {
        var edit = (await QueueAsync(1))[0];
        var t0 = Now;
        var submitting = edit with { State = EditState.Submitting };
        (await MoveAsync(edit, submitting)).ShouldBeTrue();
        Time.Advance(TimeSpan.FromSeconds(1));
        var atProvider = submitting with { State = EditState.AtProvider, RequestId = "req-1" };
        (await MoveAsync(submitting, atProvider, reason: "accepted")).ShouldBeTrue();
        Time.Advance(TimeSpan.FromSeconds(1));
        var downloading = atProvider with { State = EditState.Downloading };
        (await MoveAsync(atProvider, downloading, by: "poller")).ShouldBeTrue();
        Time.Advance(TimeSpan.FromSeconds(1));
        (await MoveAsync(downloading, downloading with { State = EditState.Succeeded }, reason: "2 files")).ShouldBeTrue();

        (await Store.GetHistoryAsync(edit.Id, Ct)).ShouldBe(
        [
            new EditHistoryEntry(edit.Id, t0, EditState.Pending, EditState.Queued, null, Server),
            new EditHistoryEntry(edit.Id, t0, EditState.Queued, EditState.Submitting, null, Server),
            new EditHistoryEntry(edit.Id, t0.AddSeconds(1), EditState.Submitting, EditState.AtProvider, "accepted", Server),
            new EditHistoryEntry(edit.Id, t0.AddSeconds(2), EditState.AtProvider, EditState.Downloading, null, "poller"),
            new EditHistoryEntry(edit.Id, t0.AddSeconds(3), EditState.Downloading, EditState.Succeeded, "2 files", Server),
        ]);
    }

    [Fact]
    public async Task TransitionManyAsync_MixedGuards_EachAppliesOrMissesOnItsOwn()
    {
        var edits = await QueueAsync(4);
        var submitting = edits[0] with { State = EditState.Submitting };
        var wrongState = edits[1] with { State = EditState.Downloading };
        var atProvider = edits[2] with { State = EditState.AtProvider, RequestId = "req-9", AcceptedSubmits = 1, SubmittedAt = Now, DueAt = Now.AddSeconds(3), CostUsd = 0.02m, ReservedUsd = 0.02m };
        var samePlace = edits[3] with { Attempt = 2 };
        var stored = await GetAsync(edits[1].Id);

        var moved = await Store.TransitionManyAsync(
        [
            new EditTransition(submitting, [EditState.Queued], Server, null),
            new EditTransition(wrongState, [EditState.AtProvider], Server, "should not apply"),
            new EditTransition(atProvider, [EditState.Submitting, EditState.Queued], Server, "accepted as req-9"),
            new EditTransition(samePlace, [EditState.Queued], Server, null),
        ], Ct);

        moved.ShouldBe([true, false, true, true]);
        (await GetAsync(edits[0].Id)).State.ShouldBe(EditState.Submitting);
        ShouldBeUnchanged(await GetAsync(edits[1].Id), stored);
        var third = await GetAsync(edits[2].Id);
        (third.State, third.RequestId, third.DueAt, third.CostUsd, third.ReservedUsd).ShouldBe((EditState.AtProvider, "req-9", Now.AddSeconds(3), 0.02m, 0.02m));
        (await GetAsync(edits[3].Id)).Attempt.ShouldBe(2);
        (await Store.GetHistoryAsync(edits[1].Id, Ct)).ShouldNotContain(h => h.Reason == "should not apply");
        (await Store.GetHistoryAsync(edits[2].Id, Ct)).ShouldContain(h => h.To == EditState.AtProvider && h.Reason == "accepted as req-9");

        // The money of the applied writes reached the batch, and the counters moved with the states.
        var batch = (await Store.GetBatchAsync(edits[0].BatchId, Ct))!;
        (batch.SpentUsd, batch.ReservedUsd).ShouldBe((0.02m, (3 * EditCost) + 0.02m));
        var progress = await Store.GetProgressAsync(edits[0].BatchId, Ct);
        (progress.Count(EditState.Queued), progress.Count(EditState.Submitting), progress.Count(EditState.AtProvider)).ShouldBe((2, 1, 1));
    }

    [Fact]
    public async Task TransitionManyAsync_ManyEditsOfTwoBatches_MovesEveryOneAndTheirMoney()
    {
        var spring = await QueueAsync(20);
        var autumn = await QueueAsync(10, "autumn-catalog");
        var settled = spring.Concat(autumn)
            .Select(e => new EditTransition(e with { State = EditState.Downloading, CostUsd = 0.02m, ReservedUsd = 0m }, [EditState.Queued], Server, null))
            .ToList();

        (await Store.TransitionManyAsync(settled, Ct)).ShouldAllBe(moved => moved);

        (await Store.GetBatchAsync(spring[0].BatchId, Ct))!.ShouldSatisfyAllConditions(b => b.SpentUsd.ShouldBe(0.40m), b => b.ReservedUsd.ShouldBe(0m));
        (await Store.GetBatchAsync(autumn[0].BatchId, Ct))!.SpentUsd.ShouldBe(0.20m);
        (await Store.GetProgressAsync(autumn[0].BatchId, Ct)).Count(EditState.Downloading).ShouldBe(10);
        (await Store.GetSpendAsync(DateOnly.FromDateTime(Now.UtcDateTime), Ct)).ShouldBe([new ProviderSpend(Provider, 0.60m)]);
    }

    [Fact]
    public async Task TransitionManyAsync_SameEditTwice_Throws()
    {
        var edit = (await ImportEditsAsync(1))[0];

        await Should.ThrowAsync<ArgumentException>(() => Store.TransitionManyAsync(
            [new EditTransition(edit with { State = EditState.Queued }, [EditState.Pending], Server, null), new EditTransition(edit with { State = EditState.Held }, [EditState.Pending], Server, null)], Ct));

        (await GetAsync(edit.Id)).State.ShouldBe(EditState.Pending);
    }

    [Fact]
    public async Task TransitionManyAsync_CancelFlaggedWhileTheStepRan_KeepsTheFlagAndMakesTheEditDueNow()
    {
        var edit = await PutAsync((await ImportEditsAsync(1))[0], EditState.Submitting);
        (await Store.RequestCancelAsync(edit.BatchId, Ct)).ShouldBe(1);
        Time.Advance(TimeSpan.FromSeconds(5));

        (await MoveAsync(edit, edit with { State = EditState.AtProvider, RequestId = "req-1", DueAt = Now + TimeSpan.FromMinutes(1) })).ShouldBeTrue();

        var after = await GetAsync(edit.Id);
        (after.State, after.CancelRequested, after.DueAt).ShouldBe((EditState.AtProvider, true, Now));
    }
}

using QwenBatch.Edits;
using QwenBatch.Feeding;

namespace QwenBatch.Storage.Tests.Edits;

/// <summary>
/// The feeder's round (<see cref="IEditStore.FeedAsync"/>) with the real <see cref="FeedPolicy"/>: which edits it takes,
/// what it shows the policy, and what it writes of each decision.
/// </summary>
public abstract partial class FeedContract : StoreContract
{
    [Fact]
    public async Task FeedAsync_DueEdits_QueuesOldestDueFirstWithinTheLimitReservingEachOnesCost()
    {
        var edits = await ImportEditsAsync(4);
        var start = Now;
        await PutAsync(edits[0], EditState.Pending, dueAt: start.AddSeconds(3));
        await PutAsync(edits[1], EditState.Pending, dueAt: start.AddSeconds(1));
        await PutAsync(edits[2], EditState.Pending, dueAt: start.AddSeconds(1));
        await PutAsync(edits[3], EditState.Pending, dueAt: start.AddSeconds(2));
        Time.Advance(TimeSpan.FromSeconds(10));

        var first = await FeedAsync(limit: 3);

        first.Select(e => e.Id).ShouldBe([edits[1].Id, edits[2].Id, edits[3].Id]);
        first.ShouldAllBe(e => e.State == EditState.Queued && e.ReservedUsd == EditCost && e.UpdatedAt == Now);
        var stored = await GetAsync(edits[1].Id);
        ShouldBeUnchanged(stored, first[0]);
        (await Store.GetHistoryAsync(edits[1].Id, Ct))[^1].ShouldBe(new EditHistoryEntry(edits[1].Id, Now, EditState.Pending, EditState.Queued, null, Server));
        (await Store.GetBatchAsync(edits[0].BatchId, Ct))!.ReservedUsd.ShouldBe(3 * EditCost);
        (await FeedAsync(limit: 3)).Select(e => e.Id).ShouldBe([edits[0].Id]);
        (await Store.GetProgressAsync(edits[0].BatchId, Ct)).Count(EditState.Queued).ShouldBe(4);
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task FeedAsync_EditNotYetDue_LeavesItUntilDue()
    {
        var edits = await ImportEditsAsync(2);
        await PutAsync(edits[0], EditState.Pending, dueAt: Now.AddSeconds(30));

        var now = await FeedAsync();
        Time.Advance(TimeSpan.FromSeconds(29));
        var early = await FeedAsync();
        Time.Advance(TimeSpan.FromSeconds(1));
        var due = await FeedAsync();

        now.Select(e => e.Id).ShouldBe([edits[1].Id]);
        early.ShouldBeEmpty();
        due.Select(e => e.Id).ShouldBe([edits[0].Id]);
    }

    [Fact]
    public async Task FeedAsync_EditsInEveryState_TakesOnlyPendingOnes()
    {
        var edits = await ImportEditsAsync(Enum.GetValues<EditState>().Length);
        foreach (var (edit, state) in edits.Zip(Enum.GetValues<EditState>()))
        {
            await PutAsync(edit, state);
        }

        (await FeedAsync()).ShouldHaveSingleItem().Id.ShouldBe(edits[0].Id);
    }

    [Fact]
    public async Task FeedAsync_WithBatchId_FeedsOnlyThatBatch()
    {
        var spring = await ImportAsync(3, "spring");
        var autumn = await ImportAsync(3, "autumn");

        var fed = await FeedAsync(batchId: autumn.Batch.Id);

        fed.Count.ShouldBe(3);
        fed.ShouldAllBe(e => e.BatchId == autumn.Batch.Id);
        (await FeedAsync(batchId: autumn.Batch.Id)).ShouldBeEmpty();
        (await FeedAsync(batchId: spring.Batch.Id)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task FeedAsync_ProviderLimits_TakeAtMostTheAllowanceOfANamedProviderAndLimitTheOthersByTheLimitOnly()
    {
        var import = await Store.ImportBatchAsync(Batch(), [.. NewEdits(5, "q"), .. NewEdits(5, "w", provider: OtherProvider)], Ct);

        // As rows: a round expands staged chunks once, for what it is short of, so on a staged batch it may take fewer.
        await EditsAsync(import.Batch.Id);

        var fed = await FeedAsync(limit: 8, providerLimits: new Dictionary<string, int> { [Provider] = 2 });

        fed.Count(e => e.Provider == Provider).ShouldBe(2);
        fed.Count(e => e.Provider == OtherProvider).ShouldBe(5);
        (await FeedAsync(limit: 8, providerLimits: new Dictionary<string, int> { [Provider] = 0 })).ShouldBeEmpty();
        (await FeedAsync(limit: 1, batchId: import.Batch.Id)).ShouldHaveSingleItem().Provider.ShouldBe(Provider);
    }

    [Fact]
    public async Task FeedAsync_BatchBudget_QueuesWhatFitsAndHoldsTheRestWithTheReason()
    {
        var edits = await ImportEditsAsync(4, budget: 0.10m);

        var fed = await FeedAsync();

        fed.Select(e => e.Id).ShouldBe([edits[0].Id, edits[1].Id]);
        var held = await GetAsync(edits[2].Id);
        held.State.ShouldBe(EditState.Held);
        held.ReservedUsd.ShouldBe(0m);
        held.Error.ShouldBe("held: the batch budget of $0.10 would be exceeded (spent $0.00, reserved $0.08, this edit needs up to $0.04); raise it with --budget");
        (await Store.GetHistoryAsync(held.Id, Ct))[^1].ShouldBe(new EditHistoryEntry(held.Id, Now, EditState.Pending, EditState.Held, held.Error, Server));
        (await Store.GetBatchAsync(edits[0].BatchId, Ct))!.ReservedUsd.ShouldBe(0.08m);
        (await Store.GetProgressAsync(edits[0].BatchId, Ct)).Count(EditState.Held).ShouldBe(2);
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task FeedAsync_BatchBudget_CountsWhatIsSpentAndReservedAsCommitted()
    {
        var edits = await ImportEditsAsync(3, budget: 0.10m);
        (await FeedAsync(limit: 1)).ShouldHaveSingleItem();
        await PutAsync(await GetAsync(edits[0].Id) with { CostUsd = 0.04m, ReservedUsd = 0m }, EditState.Downloading);

        var fed = await FeedAsync();

        // Spent $0.04: one more edit of $0.04 fits, the third would make $0.12.
        fed.Select(e => e.Id).ShouldBe([edits[1].Id]);
        (await GetAsync(edits[2].Id)).Error.ShouldBe("held: the batch budget of $0.10 would be exceeded (spent $0.04, reserved $0.04, this edit needs up to $0.04); raise it with --budget");
    }

    [Fact]
    public async Task FeedAsync_DailyBudget_CountsTodaysSpendAndOpenReservationsOfEveryBatch()
    {
        var policy = Policy(dailyBudget: 0.10m);
        var morning = (await ImportEditsAsync(1, "morning"))[0];
        (await FeedAsync(policy: policy)).ShouldHaveSingleItem();
        await PutAsync(await GetAsync(morning.Id) with { CostUsd = 0.04m, ReservedUsd = 0m }, EditState.Downloading);
        var noon = await ImportEditsAsync(3, "noon");

        var fed = await FeedAsync(policy: policy);

        // $0.04 spent + $0.04 reserved by the first edit of noon; the second would make $0.12.
        fed.Select(e => e.Id).ShouldBe([noon[0].Id]);
        (await GetAsync(noon[1].Id)).Error.ShouldBe(
            "held: the qwen-edit daily budget of $0.10 would be exceeded on 2026-01-01 (UTC) (spent today $0.04, reserved $0.04, this edit needs up to $0.04); it resumes by itself after 00:00 UTC or when DailyBudgetUsd is raised");
        (await Store.GetDailySpendAsync(Provider, Ct)).ShouldBe(new DailySpend(Provider, new DateOnly(2026, 1, 1), 0.04m, 0.04m));
    }

    [Fact]
    public async Task FeedAsync_DailyBudgetOnTheNextUtcDay_StartsAgainButOpenReservationsStillCount()
    {
        var policy = Policy(dailyBudget: 0.10m);
        Time.Advance(TimeSpan.FromHours(23.5));
        var edits = await ImportEditsAsync(4);
        (await FeedAsync(policy: policy)).Count.ShouldBe(2);
        await PutAsync(await GetAsync(edits[0].Id) with { CostUsd = 0.04m, ReservedUsd = 0m }, EditState.Downloading);
        (await Store.ReleaseHeldWithinDailyBudgetAsync(new DailyBudgetRelease(Provider, 0.10m, Price), Ct)).ShouldBe(0);

        Time.Advance(TimeSpan.FromHours(1));
        (await Store.ReleaseHeldWithinDailyBudgetAsync(new DailyBudgetRelease(Provider, 0.10m, Price), Ct)).ShouldBe(1);
        var fed = await FeedAsync(policy: policy);

        // A new day: yesterday's $0.04 no longer counts, the $0.04 still reserved since yesterday does; one more fits.
        fed.Select(e => e.Id).ShouldBe([edits[2].Id]);
        (await Store.GetDailySpendAsync(Provider, Ct)).ShouldBe(new DailySpend(Provider, new DateOnly(2026, 1, 2), 0m, 0.08m));
        (await GetAsync(edits[3].Id)).State.ShouldBe(EditState.Held);
    }

    [Fact]
    public async Task FeedAsync_MaxInFlight_CountsQueuedSubmittingAndAtProviderEditsAndLeavesTheRestPending()
    {
        var policy = Policy(maxInFlight: 3);
        var edits = await ImportEditsAsync(6);
        (await FeedAsync(limit: 2, policy: policy)).Count.ShouldBe(2);
        await PutAsync(await GetAsync(edits[0].Id), EditState.Submitting);
        await PutAsync(await GetAsync(edits[1].Id), EditState.AtProvider);

        var fed = await FeedAsync(policy: policy);
        await PutAsync(await GetAsync(edits[1].Id) with { ReservedUsd = 0m }, EditState.Succeeded);
        var afterOneFinished = await FeedAsync(policy: policy);

        fed.Select(e => e.Id).ShouldBe([edits[2].Id]);
        afterOneFinished.Select(e => e.Id).ShouldBe([edits[3].Id]);
        var waiting = await GetAsync(edits[4].Id);
        (waiting.State, waiting.Error).ShouldBe((EditState.Pending, (string?)null));
        (await Store.GetHistoryAsync(waiting.Id, Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task FeedAsync_Candidates_ShowThePolicyTheMoneyAndLoadAsCommitted()
    {
        var other = (await QueueAsync(2, "other"))[0];
        await PutAsync(other with { CostUsd = 0.02m, ReservedUsd = 0m }, EditState.Downloading);
        var edits = await ImportEditsAsync(2, budget: 5m);
        await Store.ImportBatchAsync(Batch("elsewhere"), NewEdits(1, "w", provider: OtherProvider), Ct);
        var policy = new RecordingPolicy();

        await FeedAsync(policy: policy);

        var seen = policy.Seen.ShouldHaveSingleItem();
        seen.Edits.Select(e => e.Id).ShouldBe([edits[0].Id, edits[1].Id, seen.Edits[2].Id]);
        seen.Edits.ShouldAllBe(e => e.State == EditState.Pending);
        seen.Batches[edits[0].BatchId].ShouldBe(new BatchMoney(5m, 0m, 0m));
        seen.Batches.Count.ShouldBe(2, "the batches of the candidates only");
        seen.Batches.ContainsKey(other.BatchId).ShouldBeFalse();
        seen.Providers[Provider].ShouldBe(new ProviderLoad(1, 0.02m, EditCost));
        seen.Providers[OtherProvider].ShouldBe(new ProviderLoad(0, 0m, 0m));
        seen.Day.ShouldBe(new DateOnly(2026, 1, 1));
        (await GetAsync(edits[0].Id)).State.ShouldBe(EditState.Pending, "a skipped edit stays as it was");
    }

    [Fact]
    public async Task FeedAsync_PendingEditFlaggedForCancel_IsCancelledNotFed()
    {
        var edit = await PutAsync((await ImportEditsAsync(1))[0], EditState.Submitting);
        await Store.RequestCancelAsync(edit.BatchId, Ct);
        (await MoveAsync(await GetAsync(edit.Id), edit with { State = EditState.Pending, Error = "the provider throttled the submit" })).ShouldBeTrue();

        (await FeedAsync()).ShouldBeEmpty();

        var cancelled = await GetAsync(edit.Id);
        (cancelled.State, cancelled.Error, cancelled.FinishedAt).ShouldBe((EditState.Cancelled, "cancelled by an operator", Now));
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task FeedAsync_SupersededEditBackInPending_IsNotFed()
    {
        var edit = await PutAsync((await ImportEditsAsync(1))[0], EditState.AtProvider);
        await Store.ImportBatchAsync(Batch(), [NewEdit(edit.Key, hash: "h2")], Ct);
        (await MoveAsync(await GetAsync(edit.Id), await GetAsync(edit.Id) with { State = EditState.Pending, RequestId = null })).ShouldBeTrue();

        var fed = await FeedAsync();

        fed.ShouldHaveSingleItem().ContentHash.ShouldBe("h2");
        (await GetAsync(edit.Id)).State.ShouldBe(EditState.Pending);
    }

    [Fact]
    public async Task FeedAsync_EditBoundToAJob_KeepsItWhenFedAgain()
    {
        var edit = (await QueueAsync(1))[0];
        await Store.BindJobsAsync([new JobBinding(edit.Id, "hf-7")], Ct);
        await PutAsync(await GetAsync(edit.Id) with { ReservedUsd = 0m }, EditState.Pending);

        (await FeedAsync()).ShouldHaveSingleItem().HangfireJob.ShouldBe("hf-7");
    }

    [Fact]
    public async Task FeedAsync_NothingDue_ReturnsNothingAndWritesNothing()
    {
        (await FeedAsync()).ShouldBeEmpty();
        (await FeedAsync(limit: 0)).ShouldBeEmpty();
        await ImportAsync(2);
        (await FeedAsync(limit: 0)).ShouldBeEmpty();
        (await Store.GetStateCountsAsync(Ct)).ShouldHaveSingleItem().ShouldBe(new BatchStateCount((await Store.GetBatchesAsync(Ct))[0].Id, EditState.Pending, 2));
    }

    /// <summary>Records what it was shown and skips every edit.</summary>
    private sealed class RecordingPolicy : IFeedPolicy
    {
        public List<FeedCandidates> Seen { get; } = [];

        public IReadOnlyList<FeedDecision> Decide(FeedCandidates candidates)
        {
            Seen.Add(candidates);
            return [.. candidates.Edits.Select(_ => FeedDecision.Skip.Instance)];
        }
    }
}

using System.Collections.Concurrent;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Edits;

/// <summary>Feeders in several processes at once: disjoint edits, and no limit passed together.</summary>
public abstract partial class FeedContract
{
    /// <summary>
    /// Feeders, each on a store of its own (as processes are), each round taking <paramref name="limit"/>, until a round
    /// queues nothing (a feeder may stop early, finding the rest locked by the others; the last one goes on).
    /// </summary>
    private async Task<List<EditRecord>> FeedTogetherAsync(int feeders, int limit, Feeding.IFeedPolicy policy)
    {
        var queued = new ConcurrentBag<EditRecord>();
        var stores = Enumerable.Range(0, feeders).Select(_ => OpenStore()).ToArray();
        await Task.WhenAll(stores.Select(store => Task.Run(async () =>
        {
            while (await FeedAsync(limit, policy: policy, store: store) is { Count: > 0 } round)
            {
                round.Count.ShouldBeLessThanOrEqualTo(limit);
                foreach (var edit in round)
                {
                    queued.Add(edit);
                }
            }
        })));
        return [.. queued];
    }

    [Fact]
    public async Task FeedAsync_TwoFeedersAtOnce_NeverQueueTheSameEdit()
    {
        var edits = await ImportEditsAsync(150);

        var queued = await FeedTogetherAsync(2, 7, Policy());

        queued.Select(e => e.Id).Order().ShouldBe(edits.Select(e => e.Id));
        (await Store.GetProgressAsync(edits[0].BatchId, Ct)).Count(EditState.Queued).ShouldBe(150);
        (await Store.GetBatchAsync(edits[0].BatchId, Ct))!.ReservedUsd.ShouldBe(150 * EditCost);
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task FeedAsync_FeedersAtOnceAgainstABatchBudget_NeverExceedIt()
    {
        var edits = await ImportEditsAsync(30, budget: 0.40m);

        var queued = await FeedTogetherAsync(4, 3, Policy());

        queued.Count.ShouldBe(10);
        (await Store.GetBatchAsync(edits[0].BatchId, Ct))!.ReservedUsd.ShouldBe(0.40m);
        (await FeedAsync()).ShouldBeEmpty("what the feeders left is held, not queued");
        var progress = await Store.GetProgressAsync(edits[0].BatchId, Ct);
        (progress.Count(EditState.Queued), progress.Count(EditState.Held)).ShouldBe((10, 20));
        await AssertReservationsMatchAsync();
    }

    [Fact]
    public async Task FeedAsync_FeedersAtOnceAgainstADailyBudgetAcrossBatches_NeverExceedIt()
    {
        await ImportAsync(12, "a");
        await ImportAsync(12, "b");

        var queued = await FeedTogetherAsync(4, 2, Policy(dailyBudget: 0.20m));

        queued.Count.ShouldBe(5);
        (await Store.GetDailySpendAsync(Provider, Ct)).ReservedUsd.ShouldBe(0.20m);
        (await FeedAsync(policy: Policy(dailyBudget: 0.20m))).ShouldBeEmpty();
        (await Store.GetStateCountsAsync(Ct)).Where(c => c.State == EditState.Held).Sum(c => c.Count).ShouldBe(19);
    }

    [Fact]
    public async Task FeedAsync_FeedersAtOnceAgainstMaxInFlight_NeverExceedIt()
    {
        var edits = await ImportEditsAsync(30);

        var queued = await FeedTogetherAsync(5, 3, Policy(maxInFlight: 7));

        queued.Count.ShouldBe(7);
        var progress = await Store.GetProgressAsync(edits[0].BatchId, Ct);
        (progress.Count(EditState.Queued), progress.Count(EditState.Pending)).ShouldBe((7, 23));
    }
}

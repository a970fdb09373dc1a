using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.FlowControl;

/// <summary>What every backend's <see cref="IFlowControlStore"/> must do: the shared GCRA rows, pauses, daily spend, latencies.</summary>
public abstract class FlowControlContract : StoreContract
{
    private static readonly TimeSpan Quarter = TimeSpan.FromMilliseconds(250);

    [Fact]
    public async Task ReserveRequestAsync_Burst_GrantsAtOnceThenSpacesByTheInterval()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 2, MaxWait: TimeSpan.FromSeconds(10));

        var waits = new List<TimeSpan?>();
        for (var i = 0; i < 5; i++)
        {
            waits.Add(await Store.ReserveRequestAsync(reservation, Ct));
        }

        waits.ShouldBe([TimeSpan.Zero, TimeSpan.Zero, Quarter, 2 * Quarter, 3 * Quarter]);
    }

    [Fact]
    public async Task ReserveRequestAsync_SlotBeyondMaxWait_IsNotBooked()
    {
        var reservation = new RequestReservation("acct", TimeSpan.FromSeconds(1), Burst: 1, MaxWait: TimeSpan.FromSeconds(2));
        for (var i = 0; i < 3; i++)
        {
            (await Store.ReserveRequestAsync(reservation, Ct)).ShouldNotBeNull();
        }

        (await Store.ReserveRequestAsync(reservation, Ct)).ShouldBeNull();
        Time.Advance(TimeSpan.FromSeconds(1));
        (await Store.ReserveRequestAsync(reservation, Ct)).ShouldBe(TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task ReserveRequestAsync_ManyProcessesAtOnce_BookDistinctSlotsAtTheRate()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 1, MaxWait: TimeSpan.FromMinutes(1));
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();

        var waits = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => stores[i % stores.Length].ReserveRequestAsync(reservation, Ct)));

        // Forty requests, one every 250 ms: the slots are exactly 0, 0.25 … 9.75 s, each booked once.
        waits.Select(w => w!.Value).Order().ShouldBe(Enumerable.Range(0, 40).Select(i => i * Quarter));
    }

    [Fact]
    public async Task ReserveRequestsAsync_FreshAccount_BooksConsecutiveSlotsFromNow()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 1, MaxWait: TimeSpan.FromSeconds(1));

        var slots = await Store.ReserveRequestsAsync(reservation, 8, Ct);

        // Whatever their distance: the last is 1.75 s away, beyond MaxWait, and booked all the same.
        slots.ShouldBe(new RequestSlots(TimeSpan.Zero, Quarter, 8));
        slots.Wait(7).ShouldBe(7 * Quarter);
        (await Store.ReserveRequestAsync(reservation with { MaxWait = TimeSpan.FromMinutes(1) }, Ct)).ShouldBe(8 * Quarter);
        (await Store.GetRateLimitAsync("acct", Ct))!.NextSlot.ShouldBe(Now + (9 * Quarter));
    }

    [Fact]
    public async Task ReserveRequestsAsync_AfterSlotsAlreadyBooked_StartsWhereTheyEnd()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 1, MaxWait: TimeSpan.FromMinutes(1));
        await Store.ReserveRequestsAsync(reservation, 3, Ct);
        Time.Advance(Quarter);

        var slots = await OpenStore().ReserveRequestsAsync(reservation, 2, Ct);

        slots.ShouldBe(new RequestSlots(2 * Quarter, Quarter, 2));
    }

    [Fact]
    public async Task ReserveRequestsAsync_WithinTheBurst_FirstSlotIsNowAndNoneEarlierThanBooked()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 3, MaxWait: TimeSpan.FromMinutes(1));
        await Store.ReserveRequestsAsync(reservation, 2, Ct);

        var slots = await Store.ReserveRequestsAsync(reservation, 4, Ct);

        slots.ShouldBe(new RequestSlots(TimeSpan.Zero, Quarter, 4));
        (await Store.ReserveRequestAsync(reservation, Ct)).ShouldBe(4 * Quarter);
    }

    [Fact]
    public async Task ReserveRequestsAsync_PausedAndSlowedAccount_SlotsStartAfterThePauseSpacedByTheSlowerRate()
    {
        var reservation = new RequestReservation("acct", TimeSpan.FromMilliseconds(700), Burst: 1, MaxWait: TimeSpan.FromMinutes(1));
        await Store.PauseAccountAsync("acct", Now.AddSeconds(3), Ct);

        var slots = await Store.ReserveRequestsAsync(reservation, 3, Ct);

        // A pause slows the rate to 0.7 of itself: 700 ms becomes 1 s between requests.
        slots.ShouldBe(new RequestSlots(TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(1), 3));
        var state = (await Store.GetRateLimitAsync("acct", Ct))!;
        state.NextSlot.ShouldBe(Now.AddSeconds(6));
        state.Factor.ShouldBe(0.7 * Math.Pow(1.01, 3), tolerance: 1e-9);
    }

    [Fact]
    public async Task ReserveRequestsAsync_ManyProcessesAtOnce_BookDisjointRunsAtTheRate()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 1, MaxWait: TimeSpan.FromMinutes(1));
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();

        var runs = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => stores[i % stores.Length].ReserveRequestsAsync(reservation, 3, Ct)));

        runs.SelectMany(r => Enumerable.Range(0, r.Count).Select(r.Wait)).Order().ShouldBe(Enumerable.Range(0, 36).Select(i => i * Quarter));
    }

    [Fact]
    public async Task PauseAccountAsync_After429_EveryProcessWaitsAndTheRateSlows()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 1, MaxWait: TimeSpan.FromMinutes(1));
        (await Store.ReserveRequestAsync(reservation, Ct)).ShouldBe(TimeSpan.Zero);

        await Store.PauseAccountAsync("acct", Now + TimeSpan.FromSeconds(3), Ct);

        (await OpenStore().ReserveRequestAsync(reservation, Ct)).ShouldBe(TimeSpan.FromSeconds(3));
        var state = (await Store.GetRateLimitAsync("acct", Ct))!;
        state.PausedUntil.ShouldBe(Now + TimeSpan.FromSeconds(3));
        state.Factor.ShouldBeLessThan(1.0);
        (state.NextSlot - (Now + TimeSpan.FromSeconds(3))).ShouldBeGreaterThan(Quarter);
    }

    [Fact]
    public async Task GetRateLimitsAsync_AccountsBookedAndPaused_AreListedByName()
    {
        await Store.PauseAccountAsync("wavespeed", Now.AddSeconds(30), Ct);
        await Store.ReserveRequestAsync(new RequestReservation("odirouter", Quarter, 1, TimeSpan.FromMinutes(1)), Ct);

        var limits = await Store.GetRateLimitsAsync(Ct);

        limits.Select(l => (l.Account, l.PausedUntil)).ShouldBe([("odirouter", (DateTimeOffset?)null), ("wavespeed", Now.AddSeconds(30))]);
        (await Store.GetRateLimitAsync("nobody", Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task GetDailySpendAsync_SpendOfTodayAndOpenReservations_CountsEveryBatchOfTheProvider()
    {
        var edits = await QueueAsync(3, "morning");
        await PutAsync(edits[0] with { CostUsd = 0.04m, ReservedUsd = 0m }, EditState.Downloading);
        await QueueAsync(1, "noon");
        await Store.ImportBatchAsync(Batch("elsewhere"), NewEdits(1, provider: OtherProvider), Ct);
        await FeedAsync();

        (await Store.GetDailySpendAsync(Provider, Ct)).ShouldBe(new DailySpend(Provider, new DateOnly(2026, 1, 1), 0.04m, 3 * EditCost));
        (await Store.GetDailySpendAsync(OtherProvider, Ct)).ShouldBe(new DailySpend(OtherProvider, new DateOnly(2026, 1, 1), 0m, EditCost));
        Time.Advance(TimeSpan.FromDays(1));
        (await Store.GetDailySpendAsync(Provider, Ct)).ShouldBe(new DailySpend(Provider, new DateOnly(2026, 1, 2), 0m, 3 * EditCost));
    }

    [Fact]
    public async Task MergeLatenciesAsync_EmptyStore_ReadsNothingThenStoresWhatIsObserved()
    {
        (await Store.MergeLatenciesAsync([], Ct)).ShouldBeEmpty();

        var stored = await Store.MergeLatenciesAsync([new ProviderLatency("odirouter", 1, "", 6.25, 3), new ProviderLatency("odirouter", 2, "<=1MP", 9, 1)], Ct);

        stored.ShouldBe([new ProviderLatency("odirouter", 1, "", 6.25, 3), new ProviderLatency("odirouter", 2, "<=1MP", 9, 1)]);
        (await OpenStore().MergeLatenciesAsync([], Ct)).ShouldBe(stored);
    }

    [Fact]
    public async Task MergeLatenciesAsync_KnownKey_BlendsWithTheStoredEstimateWeighingAtMostTwentyCompletions()
    {
        await Store.MergeLatenciesAsync([new ProviderLatency("odirouter", 1, "", 6, 100)], Ct);

        var stored = (await OpenStore().MergeLatenciesAsync([new ProviderLatency("odirouter", 1, "", 12, 5)], Ct)).Single();

        // (6 × 20 + 12 × 5) / 25: a hundred old completions count as twenty, so a change at the provider shows quickly.
        stored.Seconds.ShouldBe(7.2, tolerance: 1e-9);
        stored.Samples.ShouldBe(105);
    }

    [Fact]
    public async Task MergeLatenciesAsync_ManyProcessesAtOnce_EveryCompletionIsCounted()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();

        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => stores[i % stores.Length].MergeLatenciesAsync(
            [new ProviderLatency("odirouter", 1, "", 6, 1), new ProviderLatency("wavespeed", 1, "", 3, 2)], Ct)));

        var stored = await Store.MergeLatenciesAsync([], Ct);
        stored.Select(s => (s.Provider, s.Samples)).ShouldBe([("odirouter", 20L), ("wavespeed", 40L)]);
        stored.Select(s => s.Seconds).ShouldBe([6.0, 3.0], tolerance: 1e-9);
    }
}

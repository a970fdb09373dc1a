namespace QwenBatch.Storage.Tests;

/// <summary>Learned provider latencies, shared by the fleet through the store.</summary>
public abstract partial class JobStoreContract
{
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

using QwenBatch.Continuations;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    [Fact]
    public async Task ClaimContinuationsAsync_BatchNotSettled_ClaimsNothing()
    {
        var import = await ImportAsync(2, "first");
        await Store.SetContinuationAsync(import.Batch.Id, new Continuation("/manifests/next.csv", null), Ct);

        (await Store.ClaimContinuationsAsync(10, Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task ClaimContinuationsAsync_TwoStoresRacingOnSettledBatch_FiresOnce()
    {
        var import = await ImportAsync(2, "first");
        await ImportAsync(1, "no-continuation");
        await Store.SetContinuationAsync(import.Batch.Id, new Continuation("/manifests/next.csv", "https://hooks.example/done"), Ct);
        await Store.RequestCancelAsync(import.Batch.Id, Ct);
        var stores = new[] { OpenStore(), OpenStore() };

        var claims = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() => stores[i % 2].ClaimContinuationsAsync(10, Ct))));
        await Store.RecordContinuationAsync(import.Batch.Id, "webhook 200", Ct);

        var claimed = claims.SelectMany(c => c).ShouldHaveSingleItem();
        claimed.ShouldSatisfyAllConditions(
            () => claimed.BatchName.ShouldBe("first"),
            () => claimed.Then.ShouldBe(new Continuation("/manifests/next.csv", "https://hooks.example/done")),
            () => claimed.StorageDir.ShouldBe("/output/first"));
        var stored = (await Store.GetContinuationAsync(import.Batch.Id, Ct)).ShouldNotBeNull();
        stored.ClaimedAt.ShouldBe(Now);
        stored.Result.ShouldBe("webhook 200");
    }
}

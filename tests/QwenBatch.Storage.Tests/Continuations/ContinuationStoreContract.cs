using QwenBatch.Continuations;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Continuations;

/// <summary>What every backend's <see cref="IContinuationStore"/> must do: one claim per settled batch, again only after its lease.</summary>
public abstract class ContinuationStoreContract : StoreContract
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task ClaimContinuationsAsync_BatchNotSettled_ClaimsNothing()
    {
        var edits = await QueueAsync(2, "first");
        await Store.SetContinuationAsync(edits[0].BatchId, new Continuation("/manifests/next.csv", null), Ct);
        await PutAsync(edits[0] with { ReservedUsd = 0m }, EditState.Succeeded);

        (await Store.ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task ClaimContinuationsAsync_BatchSettledWithHeldEdits_IsClaimed()
    {
        var edits = await ImportEditsAsync(2, "first", budget: 0.04m);
        await Store.SetContinuationAsync(edits[0].BatchId, new Continuation(null, "https://hooks.example/done"), Ct);
        await FeedAsync();
        await PutAsync(await GetAsync(edits[0].Id) with { ReservedUsd = 0m }, EditState.Succeeded);

        (await Store.ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct)).ShouldHaveSingleItem().BatchName.ShouldBe("first");
    }

    [Fact]
    public async Task ClaimContinuationsAsync_TwoStoresRacingOnASettledBatch_FiresOnce()
    {
        var import = await ImportAsync(2, "first");
        await ImportAsync(1, "no-continuation");
        await Store.SetContinuationAsync(import.Batch.Id, new Continuation("/manifests/next.csv", "https://hooks.example/done"), Ct);
        await Store.RequestCancelAsync(import.Batch.Id, Ct);
        var stores = new[] { OpenStore(), OpenStore() };

        var claims = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() => stores[i % 2].ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct))));
        await Store.RecordContinuationAsync(import.Batch.Id, "webhook 200", Ct);

        var claimed = claims.SelectMany(c => c).ShouldHaveSingleItem();
        claimed.ShouldSatisfyAllConditions(
            () => claimed.BatchName.ShouldBe("first"),
            () => claimed.Provider.ShouldBe(Provider),
            () => claimed.Then.ShouldBe(new Continuation("/manifests/next.csv", "https://hooks.example/done")),
            () => claimed.StorageDir.ShouldBe("/output/first"));
        var stored = (await Store.GetContinuationAsync(import.Batch.Id, Ct)).ShouldNotBeNull();
        stored.ClaimedAt.ShouldBe(Now);
        stored.Result.ShouldBe("webhook 200");
    }

    [Fact]
    public async Task ClaimContinuationsAsync_ClaimerDiedBeforeRecording_ClaimableAgainOnlyAfterTheLease()
    {
        var import = await ImportAsync(1, "first");
        await Store.SetContinuationAsync(import.Batch.Id, new Continuation(null, "https://hooks.example/done"), Ct);
        await Store.RequestCancelAsync(import.Batch.Id, Ct);

        var first = await Store.ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct);
        var whileLeased = await OpenStore().ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        var afterLease = await OpenStore().ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct);
        await Store.RecordContinuationAsync(import.Batch.Id, "webhook 200", Ct);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        var afterRecord = await Store.ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct);

        first.ShouldHaveSingleItem();
        whileLeased.ShouldBeEmpty();
        afterLease.ShouldHaveSingleItem().BatchId.ShouldBe(import.Batch.Id);
        afterRecord.ShouldBeEmpty();
    }

    [Fact]
    public async Task ClaimContinuationsAsync_OneBatchAsked_ClaimsOnlyThatBatch()
    {
        var first = await ImportAsync(1, "first");
        var second = await ImportAsync(1, "second");
        foreach (var batch in new[] { first.Batch, second.Batch })
        {
            await Store.SetContinuationAsync(batch.Id, new Continuation(null, "https://hooks.example/done"), Ct);
            await Store.RequestCancelAsync(batch.Id, Ct);
        }

        var claimed = await Store.ClaimContinuationsAsync(new ContinuationClaim(10, Lease, second.Batch.Id), Ct);

        claimed.ShouldHaveSingleItem().BatchName.ShouldBe("second");
        (await Store.ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct)).ShouldHaveSingleItem().BatchName.ShouldBe("first");
    }

    [Fact]
    public async Task ClaimContinuationsAsync_FailedBatchWithoutEdits_NeverClaimed()
    {
        var failed = await Store.CreateFailedBatchAsync(Batch("nightly-then"), "/manifests/next.csv: the manifest does not exist", Ct);
        await Store.SetContinuationAsync(failed.Id, new Continuation(null, "https://hooks.example/done"), Ct);

        (await Store.ClaimContinuationsAsync(new ContinuationClaim(10, Lease), Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task GetContinuationAsync_NoneSetOrUnknownBatch_IsEmptyOrNull()
    {
        var import = await ImportAsync(1);

        var none = await Store.GetContinuationAsync(import.Batch.Id, Ct);

        none.ShouldNotBeNull().ShouldSatisfyAllConditions(c => c.Then.IsEmpty.ShouldBeTrue(), c => c.ClaimedAt.ShouldBeNull(), c => c.Result.ShouldBeNull());
        (await Store.GetContinuationAsync(import.Batch.Id + 1000, Ct)).ShouldBeNull();
    }
}

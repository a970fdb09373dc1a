namespace QwenBatch.Storage.Tests.Uploads;

/// <summary>
/// What every backend's <see cref="IUploadStore"/> must do: an image is uploaded by one claimant at a time, its URL is
/// handed to everyone until a margin before its expiry, and a claim that failed or lapsed lets the next caller try.
/// </summary>
public abstract class UploadStoreContract : StoreContract
{
    private const string Hash = "sha256:banner";
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan Margin = TimeSpan.FromDays(1);
    private static readonly TimeSpan KeptFor = TimeSpan.FromDays(7);

    [Fact]
    public async Task AcquireUploadAsync_NeverUploaded_ClaimsIt()
    {
        (await AcquireAsync("worker-a")).ShouldBe(UploadLookup.Claimed.Instance);
    }

    [Fact]
    public async Task AcquireUploadAsync_ClaimedByAnother_IsBusyUntilItsLeaseEnds()
    {
        await AcquireAsync("worker-a");
        Time.Advance(TimeSpan.FromSeconds(30));

        var busy = (await AcquireAsync("worker-b")).ShouldBeOfType<UploadLookup.Busy>();

        busy.Owner.ShouldBe("worker-a");
        busy.LeaseEnds.ShouldBe(Now - TimeSpan.FromSeconds(30) + Lease);
    }

    [Fact]
    public async Task AcquireUploadAsync_ClaimLapsed_TheNextCallerClaimsIt()
    {
        await AcquireAsync("worker-a");
        Time.Advance(Lease + TimeSpan.FromMilliseconds(1));

        (await AcquireAsync("worker-b")).ShouldBe(UploadLookup.Claimed.Instance);
        (await AcquireAsync("worker-a")).ShouldBeOfType<UploadLookup.Busy>().Owner.ShouldBe("worker-b");
    }

    [Fact]
    public async Task RecordUploadAsync_AfterTheClaim_EveryCallerGetsTheUrlOnEveryStore()
    {
        await AcquireAsync("worker-a");
        var expires = Now + KeptFor;
        await Store.RecordUploadAsync(new UploadRecord(Provider, Hash, "worker-a", "https://cdn.example/banner.png", expires), Ct);

        var live = (await AcquireAsync("worker-b", OpenStore())).ShouldBeOfType<UploadLookup.Live>();
        live.Url.ShouldBe("https://cdn.example/banner.png");
        live.ExpiresAt.ShouldBe(expires);
        (await AcquireAsync("worker-a")).ShouldBeOfType<UploadLookup.Live>().Url.ShouldBe("https://cdn.example/banner.png");
    }

    [Fact]
    public async Task AcquireUploadAsync_UrlWithinTheMarginOfItsExpiry_IsClaimedForAFreshUpload()
    {
        await AcquireAsync("worker-a");
        await Store.RecordUploadAsync(new UploadRecord(Provider, Hash, "worker-a", "https://cdn.example/old.png", Now + KeptFor), Ct);

        Time.Advance(KeptFor - Margin - TimeSpan.FromSeconds(1));
        (await AcquireAsync("worker-b")).ShouldBeOfType<UploadLookup.Live>();
        Time.Advance(TimeSpan.FromSeconds(1));
        (await AcquireAsync("worker-b")).ShouldBe(UploadLookup.Claimed.Instance);

        await Store.RecordUploadAsync(new UploadRecord(Provider, Hash, "worker-b", "https://cdn.example/new.png", Now + KeptFor), Ct);
        (await AcquireAsync("worker-c")).ShouldBeOfType<UploadLookup.Live>().Url.ShouldBe("https://cdn.example/new.png");
    }

    [Fact]
    public async Task ReleaseUploadAsync_FailedUpload_TheNextCallerClaimsItAtOnce()
    {
        await AcquireAsync("worker-a");
        await Store.ReleaseUploadAsync(Provider, Hash, "worker-b", Ct);
        (await AcquireAsync("worker-c")).ShouldBeOfType<UploadLookup.Busy>("only the claimant's release ends its claim");

        await Store.ReleaseUploadAsync(Provider, Hash, "worker-a", Ct);

        (await AcquireAsync("worker-c")).ShouldBe(UploadLookup.Claimed.Instance);
    }

    [Fact]
    public async Task RecordUploadAsync_LapsedClaimantRecordsAfterTheNewOne_TheLongerLivedUrlStaysAndTheNewClaimStands()
    {
        await AcquireAsync("worker-a");
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        await AcquireAsync("worker-b");

        await Store.RecordUploadAsync(new UploadRecord(Provider, Hash, "worker-a", "https://cdn.example/a.png", Now + KeptFor), Ct);
        (await AcquireAsync("worker-c")).ShouldBeOfType<UploadLookup.Live>().Url.ShouldBe("https://cdn.example/a.png");

        Time.Advance(TimeSpan.FromSeconds(1));
        await Store.RecordUploadAsync(new UploadRecord(Provider, Hash, "worker-b", "https://cdn.example/b.png", Now + KeptFor), Ct);
        await Store.RecordUploadAsync(new UploadRecord(Provider, Hash, "worker-a", "https://cdn.example/a.png", Now - TimeSpan.FromSeconds(1) + KeptFor), Ct);
        (await AcquireAsync("worker-c")).ShouldBeOfType<UploadLookup.Live>().Url.ShouldBe("https://cdn.example/b.png");
    }

    [Fact]
    public async Task AcquireUploadAsync_SameImageOfAnotherProviderOrAnotherImage_AreSeparate()
    {
        await AcquireAsync("worker-a");

        (await Store.AcquireUploadAsync(new UploadClaimRequest(OtherProvider, Hash, "worker-b", Lease, Margin), Ct)).ShouldBe(UploadLookup.Claimed.Instance);
        (await Store.AcquireUploadAsync(new UploadClaimRequest(Provider, "sha256:other", "worker-b", Lease, Margin), Ct)).ShouldBe(UploadLookup.Claimed.Instance);
    }

    [Fact]
    public async Task AcquireUploadAsync_ManyStoresRacing_ExactlyOneClaims()
    {
        var stores = Enumerable.Range(0, 8).Select(_ => OpenStore()).ToArray();

        var answers = await Task.WhenAll(stores.Select((store, i) => Task.Run(() => AcquireAsync($"worker-{i}", store))));

        answers.Count(a => a is UploadLookup.Claimed).ShouldBe(1);
        answers.Count(a => a is UploadLookup.Busy).ShouldBe(7);
    }

    private Task<UploadLookup> AcquireAsync(string owner, IStore? store = null) =>
        (store ?? Store).AcquireUploadAsync(new UploadClaimRequest(Provider, Hash, owner, Lease, Margin), Ct);
}

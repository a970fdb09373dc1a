using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Simulator;
using QwenBatch.Steps;
using QwenBatch.Storage;
using QwenBatch.Uploads;

namespace QwenBatch.Core.Tests.Uploads;

/// <summary>Local input images reach WaveSpeed uploaded once and named by URL; odirouter keeps data URIs.</summary>
public sealed class InputUploadsTests
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    [Fact]
    public async Task BuildAsync_OneBannerForTwelveLocales_UploadedOnceAndEverySubmitNamesItsUrl()
    {
        await using var rig = await UploadRig.StartAsync();
        var banner = rig.Image("banner.png");

        var requests = new List<EditRequest>();
        for (var i = 0; i < 12; i++)
        {
            requests.Add(await rig.Requests.BuildAsync(Spec(banner, $"locale {i}"), rig.WaveSpeed, Ct));
        }

        var url = requests[0].Images.ShouldHaveSingleItem();
        url.ShouldStartWith(rig.Simulator.BaseUrl.AbsoluteUri + "_sim/uploads/");
        requests.ShouldAllBe(r => r.Images.Single() == url);
        rig.Simulator.GetStats().Uploads.ShouldBe(1);
        foreach (var request in requests)
        {
            await rig.WaveSpeed.Client.SubmitAsync(request, Ct);
        }

        rig.Simulator.GetStats().Submits.ShouldBe(12, "the simulator accepts its own upload URL as an input image");
    }

    [Fact]
    public async Task BuildAsync_SameBytesUnderAnotherName_ReusesTheUpload()
    {
        await using var rig = await UploadRig.StartAsync();

        var first = await rig.Requests.BuildAsync(Spec(rig.Image("banner.png")), rig.WaveSpeed, Ct);
        var copy = await rig.Requests.BuildAsync(Spec(rig.Image("banner-copy.png")), rig.WaveSpeed, Ct);

        copy.Images.ShouldBe(first.Images);
        rig.Simulator.GetStats().Uploads.ShouldBe(1);
    }

    [Fact]
    public async Task BuildAsync_UrlWithinTheReuseMarginOfItsExpiry_UploadsAgain()
    {
        await using var rig = await UploadRig.StartAsync();
        var banner = rig.Image("banner.png");
        var first = (await rig.Requests.BuildAsync(Spec(banner), rig.WaveSpeed, Ct)).Images[0];
        var options = rig.WaveSpeed.Options;

        rig.Scope.Time.Advance(options.UploadKeptFor - options.UploadReuseMargin - TimeSpan.FromSeconds(1));
        (await rig.Requests.BuildAsync(Spec(banner), rig.WaveSpeed, Ct)).Images[0].ShouldBe(first);
        rig.Scope.Time.Advance(TimeSpan.FromSeconds(2));
        var second = (await rig.Requests.BuildAsync(Spec(banner), rig.WaveSpeed, Ct)).Images[0];

        second.ShouldNotBe(first);
        rig.Simulator.GetStats().Uploads.ShouldBe(2);
    }

    [Fact]
    public async Task UrlAsync_AnotherWorkerIsUploadingIt_WaitsForItsUrlAndUploadsNothing()
    {
        await using var rig = await UploadRig.StartAsync();
        var image = await LocalImage.ReadAsync(rig.Image("banner.png"), 1 << 20, Ct);
        var other = rig.Scope.NewStore();
        (await other.AcquireUploadAsync(new UploadClaimRequest(ProviderNames.WaveSpeed, image.ContentHash, "worker-b", TimeSpan.FromMinutes(5), TimeSpan.FromDays(1)), Ct))
            .ShouldBe(UploadLookup.Claimed.Instance);

        var waiting = rig.Uploads.UrlAsync(rig.WaveSpeed, (IInputUploader)rig.WaveSpeed.Client, image, Ct);
        rig.Scope.Time.Advance(InputUploads.LookAgain);
        await Task.Delay(50);
        waiting.IsCompleted.ShouldBeFalse("the other worker's claim stands");
        await other.RecordUploadAsync(new UploadRecord(ProviderNames.WaveSpeed, image.ContentHash, "worker-b", "https://cdn.example/banner.png", rig.Scope.Time.GetUtcNow() + TimeSpan.FromDays(7)), Ct);

        (await rig.PumpAsync(waiting)).ShouldBe("https://cdn.example/banner.png");
        rig.Simulator.GetStats().Uploads.ShouldBe(0);
    }

    [Fact]
    public async Task UrlAsync_TheOtherUploaderDiedHoldingTheClaim_UploadsItselfOnceTheLeaseEnds()
    {
        await using var rig = await UploadRig.StartAsync();
        var image = await LocalImage.ReadAsync(rig.Image("banner.png"), 1 << 20, Ct);
        await rig.Scope.NewStore().AcquireUploadAsync(new UploadClaimRequest(ProviderNames.WaveSpeed, image.ContentHash, "dead-worker", TimeSpan.FromMinutes(5), TimeSpan.FromDays(1)), Ct);

        var waiting = rig.Uploads.UrlAsync(rig.WaveSpeed, (IInputUploader)rig.WaveSpeed.Client, image, Ct);
        await Task.Delay(50);
        waiting.IsCompleted.ShouldBeFalse("the claim stands until its lease ends");
        rig.Scope.Time.Advance(TimeSpan.FromMinutes(5));
        var url = await rig.PumpAsync(waiting);

        url.ShouldStartWith(rig.Simulator.BaseUrl.AbsoluteUri + "_sim/uploads/");
        rig.Simulator.GetStats().Uploads.ShouldBe(1);
    }

    [Fact]
    public async Task UrlAsync_ProviderRefusesTheKey_AnInputErrorNamingTheFileAndTheClaimReleased()
    {
        await using var rig = await UploadRig.StartAsync(key: null);
        var path = rig.Image("banner.png");
        var image = await LocalImage.ReadAsync(path, 1 << 20, Ct);

        var error = await Should.ThrowAsync<EditInputException>(rig.Uploads.UrlAsync(rig.WaveSpeed, (IInputUploader)rig.WaveSpeed.Client, image, Ct));

        error.Message.ShouldStartWith($"Input image '{path}' could not be uploaded to wavespeed: POST /api/v3/media/upload/binary: HTTP 401");
        (await rig.Scope.Store.AcquireUploadAsync(new UploadClaimRequest(ProviderNames.WaveSpeed, image.ContentHash, "next", TimeSpan.FromMinutes(1), TimeSpan.FromDays(1)), Ct))
            .ShouldBe(UploadLookup.Claimed.Instance, "a failed upload leaves the image to the next try at once");
    }

    [Fact]
    public async Task UrlAsync_ProviderFailingEveryCall_RetriedThenARetryableErrorNamingTheFile()
    {
        await using var rig = await UploadRig.StartAsync(new SimulatorOptions { ErrorRate = 1, LatencyMin = TimeSpan.Zero, LatencyMax = TimeSpan.Zero }, maxRetries: 2);
        var path = rig.Image("banner.png");
        var image = await LocalImage.ReadAsync(path, 1 << 20, Ct);

        var error = await Should.ThrowAsync<ProviderException>(rig.PumpAsync(rig.Uploads.UrlAsync(rig.WaveSpeed, (IInputUploader)rig.WaveSpeed.Client, image, Ct)));

        error.Kind.ShouldBe(ProviderErrorKind.NotAccepted);
        error.Message.ShouldStartWith($"Input image '{path}' could not be uploaded to wavespeed: POST /api/v3/media/upload/binary: HTTP 503");
        rig.Simulator.GetStats().Faults!["server_error"].ShouldBe(3, "the upload is retried like an idempotent call: 1 + 2 retries");
        rig.Simulator.GetStats().Uploads.ShouldBe(0);
    }

    [Fact]
    public async Task UrlAsync_AccountPausedByA429_NotSentAndTheEditWaitsInTheBacklog()
    {
        await using var rig = await UploadRig.StartAsync();
        var image = await LocalImage.ReadAsync(rig.Image("banner.png"), 1 << 20, Ct);
        await rig.Scope.Store.PauseAccountAsync(ProviderNames.WaveSpeed, rig.Scope.Time.GetUtcNow() + TimeSpan.FromMinutes(5), Ct);

        var error = await Should.ThrowAsync<ProviderException>(rig.Uploads.UrlAsync(rig.WaveSpeed, (IInputUploader)rig.WaveSpeed.Client, image, Ct));

        error.Kind.ShouldBe(ProviderErrorKind.Throttled, "uploads book the fleet's shared request allowance like every API call");
        rig.Simulator.GetStats().Uploads.ShouldBe(0);
    }

    [Fact]
    public async Task BuildAsync_Odirouter_KeepsDataUrisAndUploadsNothing()
    {
        await using var rig = await UploadRig.StartAsync();
        var banner = rig.Image("banner.png");

        var request = await rig.Requests.BuildAsync(Spec(banner), rig.Providers.Get(ProviderNames.Odirouter), Ct);

        request.Images.ShouldHaveSingleItem().ShouldBe("data:image/png;base64," + Convert.ToBase64String(await File.ReadAllBytesAsync(banner)));
        rig.Simulator.GetStats().Uploads.ShouldBe(0);
    }

    [Fact]
    public async Task BuildAsync_WaveSpeedWithUploadsSwitchedOff_SendsDataUris()
    {
        await using var rig = await UploadRig.StartAsync(uploadInputs: false);

        var request = await rig.Requests.BuildAsync(Spec(rig.Image("banner.png")), rig.WaveSpeed, Ct);

        request.Images.ShouldHaveSingleItem().ShouldStartWith("data:image/png;base64,");
        rig.Simulator.GetStats().Uploads.ShouldBe(0);
    }

    private static EditSpec Spec(string image, string prompt = "Replace the headline") => new() { Prompt = prompt, Images = [image], Size = "1024*512" };
}

using Microsoft.Extensions.Time.Testing;
using System.Net;
using System.Text.Json;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.Odirouter;

public sealed class LifecycleTests
{
    private const string Requests = SimulatorScope.Queue + "/requests/";

    [Fact]
    public async Task Submit_ThenPollAndDownload_ReturnsValidPngsWithRequestedSize()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        var submitted = await sim.SubmitAsync("""{"prompt":"p","images":["https://a/1.png"],"size":"640*768","n":2,"seed":7}""");
        var id = submitted.GetProperty("request_id").GetString()!;

        (await sim.WaitForTerminalAsync(id)).ShouldBe("COMPLETED");
        var (code, result) = await sim.GetAsync(submitted.GetProperty("response_url").GetString()!);

        code.ShouldBe(HttpStatusCode.OK);
        result.GetProperty("request_id").GetString().ShouldBe(id);
        result.GetProperty("status").GetString().ShouldBe("COMPLETED");
        result.GetProperty("seed").GetInt32().ShouldBe(7);
        result.GetProperty("timings").GetProperty("inference").GetInt64().ShouldBe(60);
        result.GetProperty("has_nsfw_concepts").EnumerateArray().Select(e => e.GetBoolean()).ShouldBe([false, false]);
        var images = result.GetProperty("images").EnumerateArray().ToList();
        images.Count.ShouldBe(2);
        var bytes = new List<byte[]>();
        foreach (var image in images)
        {
            image.GetProperty("content_type").GetString().ShouldBe("image/png");
            image.GetProperty("width").GetInt32().ShouldBe(640);
            image.GetProperty("height").GetInt32().ShouldBe(768);
            using var plain = new HttpClient(); // files need no auth, like a CDN
            using var download = await plain.GetAsync(image.GetProperty("url").GetString());
            download.StatusCode.ShouldBe(HttpStatusCode.OK);
            download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
            var png = await download.Content.ReadAsByteArrayAsync();
            PngInspector.Inspect(png).ShouldBe((640, 768));
            bytes.Add(png);
        }
        bytes[0].ShouldNotBe(bytes[1], "each output index gets its own picture");
    }

    [Fact]
    public async Task Download_WithoutSize_Returns1024SquarePng()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(), time);
        var id = (await sim.SubmitAsync()).GetProperty("request_id").GetString()!;
        time.Advance(TimeSpan.FromSeconds(1));

        var png = await sim.Client.GetByteArrayAsync($"_sim/files/{id}/0.png");

        PngInspector.Inspect(png).ShouldBe((1024, 1024));
    }

    [Fact]
    public async Task Download_WithOutputPadding_IsAValidPngAtLeastThatLarge()
    {
        var time = new FakeTimeProvider();
        var options = SimulatorScope.FastOptions();
        options.OutputPadding = (2 * 1024 * 1024) + 5;
        await using var sim = await SimulatorScope.StartAsync(options, time);
        var id = (await sim.SubmitAsync("""{"prompt":"p","images":["https://a/1.png"],"size":"512*512"}""")).GetProperty("request_id").GetString()!;
        time.Advance(TimeSpan.FromSeconds(1));

        var png = await sim.Client.GetByteArrayAsync($"_sim/files/{id}/0.png");

        PngInspector.Inspect(png).ShouldBe((512, 512));
        png.Length.ShouldBeGreaterThan(options.OutputPadding);
    }

    [Fact]
    public async Task Download_BeforeCompletionOrBeyondN_Returns404()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(), time);
        var id = (await sim.SubmitAsync()).GetProperty("request_id").GetString()!;

        (await sim.Client.GetAsync($"_sim/files/{id}/0.png")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        time.Advance(TimeSpan.FromSeconds(1));
        (await sim.Client.GetAsync($"_sim/files/{id}/1.png")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        (await sim.Client.GetAsync($"_sim/files/{id}/0.png")).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Response_WhileRunning_Returns409InProgress()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(100), time);
        var id = (await sim.SubmitAsync()).GetProperty("request_id").GetString()!;
        time.Advance(TimeSpan.FromMilliseconds(50));

        (await sim.StatusOfAsync(id)).ShouldBe("IN_PROGRESS");
        var (code, body) = await sim.GetAsync(Requests + id + "/response");

        code.ShouldBe(HttpStatusCode.Conflict);
        body.GetProperty("detail").GetString().ShouldBe("Request is still in progress");
    }

    [Fact]
    public async Task Cancel_RunningTask_BecomesCanceledAndIsNotCharged()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(100), time);
        var id = (await sim.SubmitAsync()).GetProperty("request_id").GetString()!;
        time.Advance(TimeSpan.FromMilliseconds(50));

        var (code, cancel) = await sim.PutAsync(Requests + id + "/cancel");
        time.Advance(TimeSpan.FromSeconds(1));

        code.ShouldBe(HttpStatusCode.OK);
        cancel.GetProperty("status").GetString().ShouldBe("CANCELLATION_REQUESTED");
        (await sim.StatusOfAsync(id)).ShouldBe("CANCELED");
        var (responseCode, response) = await sim.GetAsync(Requests + id + "/response");
        responseCode.ShouldBe(HttpStatusCode.Conflict);
        response.GetProperty("status").GetString().ShouldBe("CANCELED");
        (await sim.Client.GetAsync($"_sim/files/{id}/0.png")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        var stats = sim.Host.GetStats();
        stats.Cancels.ShouldBe(1);
        stats.ChargedImages.ShouldBe(0);
        stats.ChargedUsd.ShouldBe(0m);
        stats.MaxConcurrent.ShouldBe(1);
    }

    [Fact]
    public async Task Cancel_CompletedTask_ReturnsAlreadyCompletedAndStaysCharged()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(), time);
        var id = (await sim.SubmitAsync()).GetProperty("request_id").GetString()!;
        time.Advance(TimeSpan.FromSeconds(1));

        var (code, cancel) = await sim.PutAsync(Requests + id + "/cancel");

        code.ShouldBe(HttpStatusCode.OK);
        cancel.GetProperty("status").GetString().ShouldBe("ALREADY_COMPLETED");
        (await sim.StatusOfAsync(id)).ShouldBe("COMPLETED");
        sim.Host.GetStats().ChargedImages.ShouldBe(1);
    }

    [Fact]
    public async Task FailingTask_ReportsFailedWith422AndIsNotCharged()
    {
        var time = new FakeTimeProvider();
        var options = SimulatorScope.FastOptions();
        options.FailRate = 1;
        await using var sim = await SimulatorScope.StartAsync(options, time);
        var id = (await sim.SubmitAsync()).GetProperty("request_id").GetString()!;
        time.Advance(TimeSpan.FromSeconds(1));

        var (statusCode, status) = await sim.GetAsync(Requests + id + "/status");
        var (responseCode, response) = await sim.GetAsync(Requests + id + "/response");
        var (cancelCode, cancel) = await sim.PutAsync(Requests + id + "/cancel");

        statusCode.ShouldBe(HttpStatusCode.OK);
        status.GetProperty("status").GetString().ShouldBe("FAILED");
        status.GetProperty("error").GetString().ShouldNotBeNullOrWhiteSpace();
        responseCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        response.GetProperty("status").GetString().ShouldBe("FAILED");
        response.GetProperty("detail").GetString().ShouldNotBeNullOrWhiteSpace();
        cancelCode.ShouldBe(HttpStatusCode.OK);
        cancel.GetProperty("status").GetString().ShouldBe("ALREADY_COMPLETED");
        sim.Host.GetStats().ChargedImages.ShouldBe(0);
    }

    [Fact]
    public async Task Stats_AfterCompletedTasks_CountsCallsAndCharges()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(), time);
        var first = (await sim.SubmitAsync("""{"prompt":"p","images":["https://a/1.png"],"n":3}""")).GetProperty("request_id").GetString()!;
        var second = (await sim.SubmitAsync("""{"prompt":"p","images":["https://a/1.png"],"n":2}""")).GetProperty("request_id").GetString()!;
        (await sim.StatusOfAsync(first)).ShouldBe("IN_PROGRESS");
        sim.Host.GetStats().ChargedImages.ShouldBe(0, "nothing is charged before completion");
        time.Advance(TimeSpan.FromSeconds(1));
        (await sim.StatusOfAsync(second)).ShouldBe("COMPLETED");
        (await sim.GetAsync(Requests + first + "/response")).Status.ShouldBe(HttpStatusCode.OK);
        (await sim.GetAsync(Requests + second + "/response")).Status.ShouldBe(HttpStatusCode.OK);
        (await sim.GetAsync(Requests + second + "/response")).Status.ShouldBe(HttpStatusCode.OK);

        var (code, json) = await sim.GetAsync("_sim/stats");

        code.ShouldBe(HttpStatusCode.OK);
        json.GetProperty("submits").GetInt64().ShouldBe(2);
        json.GetProperty("status_calls").GetInt64().ShouldBe(2);
        json.GetProperty("result_calls").GetInt64().ShouldBe(3);
        json.GetProperty("cancels").GetInt64().ShouldBe(0);
        json.GetProperty("rate_limited").GetInt64().ShouldBe(0);
        json.GetProperty("max_concurrent").GetInt32().ShouldBe(2);
        json.GetProperty("charged_images").GetInt64().ShouldBe(5);
        json.GetProperty("charged_usd").GetDecimal().ShouldBe(0.10m);
        var stats = sim.Host.GetStats();
        (stats with { Faults = null, Keys = null }).ShouldBe(new SimulatorStats(2, 2, 3, 0, 0, 2, 5, 0.10m));
        stats.Keys!.Values.Single().ShouldBe(new Stats.KeyStats(Requests: 7, Submits: 2, RateLimited: 0));
        json.GetProperty("keys").ToString().ShouldNotContain("test-key");
    }

    [Fact]
    public async Task RestartedSimulator_AnswersForIdIssuedBeforeRestart()
    {
        var time = new FakeTimeProvider();
        string id;
        await using (var first = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(100), time))
        {
            id = (await first.SubmitAsync("""{"prompt":"p","images":["https://a/1.png"],"size":"512*512","n":2}""")).GetProperty("request_id").GetString()!;
        }

        await using var second = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(100), time);
        time.Advance(TimeSpan.FromMilliseconds(50));
        (await second.StatusOfAsync(id)).ShouldBe("IN_PROGRESS");
        time.Advance(TimeSpan.FromMilliseconds(50));
        (await second.StatusOfAsync(id)).ShouldBe("COMPLETED");
        var (code, result) = await second.GetAsync(Requests + id + "/response");

        code.ShouldBe(HttpStatusCode.OK);
        var urls = result.GetProperty("images").EnumerateArray().Select(i => i.GetProperty("url").GetString()!).ToList();
        urls.Count.ShouldBe(2);
        urls.ShouldAllBe(u => u.StartsWith(second.Host.BaseUrl.ToString(), StringComparison.Ordinal));
        PngInspector.Inspect(await second.Client.GetByteArrayAsync(urls[1])).ShouldBe((512, 512));
    }

    [Fact]
    public async Task StatusJson_InQueue_HasQueuePositionAndNoError()
    {
        var time = new FakeTimeProvider();
        var options = SimulatorScope.FastOptions();
        options.MaxConcurrent = 1;
        await using var sim = await SimulatorScope.StartAsync(options, time);
        await sim.SubmitAsync();
        var id = (await sim.SubmitAsync()).GetProperty("request_id").GetString()!;

        var (_, status) = await sim.GetAsync(Requests + id + "/status");

        status.GetProperty("request_id").GetString().ShouldBe(id);
        status.GetProperty("status").GetString().ShouldBe("IN_QUEUE");
        status.GetProperty("queue_position").ValueKind.ShouldBe(JsonValueKind.Number);
        status.TryGetProperty("error", out _).ShouldBeFalse();
    }
}

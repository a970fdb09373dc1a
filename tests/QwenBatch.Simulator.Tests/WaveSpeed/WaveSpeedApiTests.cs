using Microsoft.Extensions.Time.Testing;
using System.Net;
using System.Net.Http.Headers;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.WaveSpeed;

public sealed class WaveSpeedApiTests
{
    private const string Submit = "api/v3/wavespeed-ai/qwen-image/edit-plus";
    private const string Body = """{"prompt":"white studio background","images":["https://example.com/a.png"],"size":"320*256","output_format":"png"}""";

    [Theory]
    [InlineData("""{"images":["https://example.com/a.png"]}""", "prompt: a non-empty string is required")]
    [InlineData("""{"prompt":"p","images":[]}""", "images: an array of 1 to 3 images")]
    [InlineData("""{"prompt":"p","images":["https://e/a.png"],"size":"2048*2048"}""", "size: \"W*H\" with each side between 256 and 1536")]
    [InlineData("""{"prompt":"p","images":["https://e/a.png"],"seed":-2}""", "seed: an integer between -1 (random) and 2147483647")]
    [InlineData("""{"prompt":"p","images":["https://e/a.png"],"output_format":"gif"}""", "output_format: one of jpeg, png, webp")]
    public async Task Submit_InvalidBody_Answers400WithFieldMessageInTheWrapper(string body, string message)
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());

        using var response = await sim.Client.PostAsync(Submit, SimulatorScope.Json(body));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var json = await SimulatorScope.ReadJsonAsync(response);
        json.GetProperty("code").GetInt32().ShouldBe(400);
        json.GetProperty("message").GetString()!.ShouldStartWith(message);
        sim.Host.GetStats().Submits.ShouldBe(0);
    }

    [Fact]
    public async Task Submit_WithoutBearer_Answers401()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        sim.Client.DefaultRequestHeaders.Authorization = null;

        using var response = await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body));

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await SimulatorScope.ReadJsonAsync(response)).GetProperty("code").GetInt32().ShouldBe(401);
    }

    [Fact]
    public async Task Result_Base64Requested_CompletesWithInlineImageAndTimings()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(), time);
        using var submitted = await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body.Replace("}", ""","enable_base64_output":true}""", StringComparison.Ordinal)));
        var data = (await SimulatorScope.ReadJsonAsync(submitted)).GetProperty("data");
        var id = data.GetProperty("id").GetString()!;
        data.GetProperty("status").GetString().ShouldBeOneOf("created", "processing");
        data.GetProperty("urls").GetProperty("get").GetString()!.ShouldEndWith($"/api/v3/predictions/{id}/result");

        time.Advance(TimeSpan.FromSeconds(1));
        var (code, result) = await sim.GetAsync($"api/v3/predictions/{id}/result");

        code.ShouldBe(HttpStatusCode.OK);
        var done = result.GetProperty("data");
        done.GetProperty("status").GetString().ShouldBe("completed");
        done.GetProperty("has_nsfw_contents").GetArrayLength().ShouldBe(1);
        done.GetProperty("timings").GetProperty("inference").GetInt64().ShouldBe(60);
        var output = done.GetProperty("outputs")[0].GetString()!;
        output.ShouldStartWith("data:image/png;base64,");
        var png = Convert.FromBase64String(output[(output.IndexOf(',', StringComparison.Ordinal) + 1)..]);
        System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)).ShouldBe(320);
    }

    [Fact]
    public async Task Requests_BeyondRateLimit_Answer429WithRetryAfterAndCountPerKey()
    {
        var time = new FakeTimeProvider();
        var options = SimulatorScope.FastOptions();
        options.RateLimit = 2;
        await using var sim = await SimulatorScope.StartAsync(options, time);

        (await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body))).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body))).StatusCode.ShouldBe(HttpStatusCode.OK);
        using var limited = await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body));
        limited.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        limited.Headers.RetryAfter!.Delta.ShouldBe(TimeSpan.FromSeconds(1));
        using var other = new HttpClient { BaseAddress = sim.Host.BaseUrl };
        other.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "another-key");
        (await other.PostAsync(Submit, SimulatorScope.Json(Body))).StatusCode.ShouldBe(HttpStatusCode.OK, "the limit is per key");
        time.Advance(TimeSpan.FromSeconds(1));
        (await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body))).StatusCode.ShouldBe(HttpStatusCode.OK);

        var stats = sim.Host.GetStats();
        stats.RateLimited.ShouldBe(1);
        stats.Submits.ShouldBe(4);
        stats.Keys!.Values.Select(k => k.RateLimited).Order().ShouldBe([0L, 1L]);
    }

    [Fact]
    public async Task Submit_OverConcurrencyWithReject_Answers429AndAcceptsNothing()
    {
        var options = SimulatorScope.FastOptions(latencyMs: 60_000);
        options.MaxConcurrent = 1;
        options.RejectOverConcurrency = true;
        await using var sim = await SimulatorScope.StartAsync(options, new FakeTimeProvider());

        (await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body))).StatusCode.ShouldBe(HttpStatusCode.OK);
        using var rejected = await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body));

        rejected.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        sim.Host.GetStats().Submits.ShouldBe(1);
    }

    [Fact]
    public async Task Submit_ErrorRateOne_Answers503AndAcceptsNothing()
    {
        var options = SimulatorScope.FastOptions();
        options.ErrorRate = 1;
        await using var sim = await SimulatorScope.StartAsync(options);

        using var response = await sim.Client.PostAsync(Submit, SimulatorScope.Json(Body));

        response.StatusCode.ShouldBe(HttpStatusCode.ServiceUnavailable);
        sim.Host.GetStats().Submits.ShouldBe(0);
        sim.Host.GetStats().Faults!["server_error"].ShouldBe(1);
    }

    [Fact]
    public async Task Result_MalformedRateOne_AnswersTruncatedJson()
    {
        var options = SimulatorScope.FastOptions();
        options.MalformedRate = 1;
        await using var sim = await SimulatorScope.StartAsync(options);

        using var response = await sim.Client.GetAsync("api/v3/predictions/sim_x/result");

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Should.Throw<System.Text.Json.JsonException>(() => System.Text.Json.JsonDocument.Parse(response.Content.ReadAsStringAsync().Result));
    }
}

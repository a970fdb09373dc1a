using System.Net;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.Odirouter;

public sealed class SubmitTests : IAsyncLifetime
{
    private SimulatorScope _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    [Fact]
    public async Task Submit_WithoutBearer_Returns401()
    {
        using var client = new HttpClient { BaseAddress = _sim.Host.BaseUrl };
        using var response = await client.PostAsync(SimulatorScope.Queue, SimulatorScope.Json(SimulatorScope.ValidBody));

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        var body = await SimulatorScope.ReadJsonAsync(response);
        body.GetProperty("detail").GetString().ShouldNotBeNullOrWhiteSpace();
        _sim.Host.GetStats().Submits.ShouldBe(0);
    }

    [Fact]
    public async Task Submit_WithEmptyBearer_Returns401()
    {
        using var client = new HttpClient { BaseAddress = _sim.Host.BaseUrl };
        using var request = new HttpRequestMessage(HttpMethod.Post, SimulatorScope.Queue) { Content = SimulatorScope.Json(SimulatorScope.ValidBody) };
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer ");
        using var response = await client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Status_WithoutBearer_Returns401()
    {
        var submitted = await _sim.SubmitAsync();
        using var client = new HttpClient();
        using var response = await client.GetAsync(submitted.GetProperty("status_url").GetString());

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
    }

    [Theory]
    [InlineData("""{"images":["https://example.com/a.png"]}""", "prompt: ")]
    [InlineData("""{"prompt":"  ","images":["https://example.com/a.png"]}""", "prompt: ")]
    [InlineData("""{"prompt":"p"}""", "images: ")]
    [InlineData("""{"prompt":"p","images":[]}""", "images: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png","https://a/2.png","https://a/3.png","https://a/4.png"]}""", "images: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png",""]}""", "images[1]: ")]
    [InlineData("""{"prompt":"p","images":["ftp://a/1.png"]}""", "images[0]: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"n":7}""", "n: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"n":0}""", "n: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"size":"100*100"}""", "size: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"size":"1024x1024"}""", "size: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"seed":-1}""", "seed: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"seed":2147483648}""", "seed: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"watermark":"yes"}""", "watermark: ")]
    [InlineData("""{"prompt":"p","images":["https://a/1.png"],"prompt_extend":1}""", "prompt_extend: ")]
    [InlineData("""[1,2]""", "body: ")]
    [InlineData("""{"prompt":""", "body: ")]
    public async Task Submit_WithBadField_Returns400NamingTheField(string body, string expectedDetailStart)
    {
        using var response = await _sim.Client.PostAsync(SimulatorScope.Queue, SimulatorScope.Json(body));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var detail = (await SimulatorScope.ReadJsonAsync(response)).GetProperty("detail").GetString()!;
        detail.ShouldStartWith(expectedDetailStart);
        detail.Length.ShouldBeGreaterThan(expectedDetailStart.Length + 10, "the detail says what was expected");
        _sim.Host.GetStats().Submits.ShouldBe(0);
    }

    [Fact]
    public async Task Submit_WithLongNegativePrompt_Returns400()
    {
        var body = $$"""{"prompt":"p","images":["https://a/1.png"],"negative_prompt":"{{new string('x', 501)}}"}""";
        using var response = await _sim.Client.PostAsync(SimulatorScope.Queue, SimulatorScope.Json(body));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await SimulatorScope.ReadJsonAsync(response)).GetProperty("detail").GetString()!.ShouldStartWith("negative_prompt: ");
    }

    [Fact]
    public async Task Submit_WithAllOptionalFields_IsAccepted()
    {
        var body = """
            {"prompt":"p","images":["https://a/1.png","data:image/png;base64,iVBORw0KGgo=","iVBORw0KGgo="],
             "negative_prompt":"blurry","size":"1024*1536","n":6,"seed":2147483647,"prompt_extend":false,"watermark":true}
            """;
        var submitted = await _sim.SubmitAsync(body);

        submitted.GetProperty("request_id").GetString()!.ShouldStartWith("sim_");
    }

    [Fact]
    public async Task Submit_UnderModelPrefix_ReturnsUrlsUnderModelPrefix()
    {
        using var response = await _sim.Client.PostAsync("model/" + SimulatorScope.Queue, SimulatorScope.Json(SimulatorScope.ValidBody));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var body = await SimulatorScope.ReadJsonAsync(response);
        var id = body.GetProperty("request_id").GetString();
        var baseUrl = _sim.Host.BaseUrl.ToString();
        body.GetProperty("status_url").GetString().ShouldBe($"{baseUrl}model/{SimulatorScope.Queue}/requests/{id}/status");
        body.GetProperty("response_url").GetString().ShouldBe($"{baseUrl}model/{SimulatorScope.Queue}/requests/{id}/response");
        body.GetProperty("cancel_url").GetString().ShouldBe($"{baseUrl}model/{SimulatorScope.Queue}/requests/{id}/cancel");
        body.GetProperty("queue_position").GetInt32().ShouldBe(0);

        var (code, status) = await _sim.GetAsync(body.GetProperty("status_url").GetString()!);
        code.ShouldBe(HttpStatusCode.OK);
        status.GetProperty("request_id").GetString().ShouldBe(id);
    }

    [Theory]
    [InlineData("status")]
    [InlineData("response")]
    public async Task Get_WithUnknownOrGarbledId_Returns404(string endpoint)
    {
        var submitted = await _sim.SubmitAsync();
        var id = submitted.GetProperty("request_id").GetString()!;
        var garbled = id[..^3] + (id[^3] == 'A' ? "BBB" : "AAA");

        foreach (var bad in new[] { "nope", "sim_", garbled })
        {
            var (code, body) = await _sim.GetAsync($"{SimulatorScope.Queue}/requests/{bad}/{endpoint}");
            code.ShouldBe(HttpStatusCode.NotFound);
            body.GetProperty("detail").GetString().ShouldBe("Request not found");
        }
    }

    [Fact]
    public async Task Cancel_WithUnknownId_Returns404NotFound()
    {
        var (code, body) = await _sim.PutAsync($"{SimulatorScope.Queue}/requests/sim_xyz/cancel");

        code.ShouldBe(HttpStatusCode.NotFound);
        body.GetProperty("status").GetString().ShouldBe("NOT_FOUND");
    }
}

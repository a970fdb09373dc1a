using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;

namespace QwenBatch.Simulator.Tests.TestSupport;

/// <summary>A simulator on a free loopback port plus an HttpClient that talks to it with a bearer token.</summary>
internal sealed class SimulatorScope : IAsyncDisposable
{
    public const string Queue = "v1/queue/qwen_image_edit_plus";
    public const string ValidBody = """{"prompt":"white studio background","images":["https://example.com/a.png"]}""";

    private SimulatorScope(SimulatorHost host, HttpClient client)
    {
        Host = host;
        Client = client;
    }

    public SimulatorHost Host { get; }

    public HttpClient Client { get; }

    public static SimulatorOptions FastOptions(int latencyMs = 60) => new()
    {
        LatencyMin = TimeSpan.FromMilliseconds(latencyMs),
        LatencyMax = TimeSpan.FromMilliseconds(latencyMs),
        RandomSeed = 42,
    };

    public static async Task<SimulatorScope> StartAsync(SimulatorOptions options, TimeProvider? time = null)
    {
        var host = await SimulatorHost.StartAsync(options, 0, time ?? TimeProvider.System, NullLoggerFactory.Instance, CancellationToken.None);
        var client = new HttpClient { BaseAddress = host.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "test-key");
        return new SimulatorScope(host, client);
    }

    public async Task<JsonElement> SubmitAsync(string body = ValidBody)
    {
        using var response = await Client.PostAsync(Queue, Json(body));
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return await ReadJsonAsync(response);
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(string url)
    {
        using var response = await Client.GetAsync(url);
        return (response.StatusCode, await ReadJsonAsync(response));
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> PutAsync(string url)
    {
        using var response = await Client.PutAsync(url, content: null);
        return (response.StatusCode, await ReadJsonAsync(response));
    }

    public async Task<string> StatusOfAsync(string requestId)
    {
        var (code, body) = await GetAsync($"{Queue}/requests/{requestId}/status");
        code.ShouldBe(HttpStatusCode.OK);
        return body.GetProperty("status").GetString()!;
    }

    /// <summary>Polls with a bounded wait (real clock tests only).</summary>
    public async Task<string> WaitForTerminalAsync(string requestId)
    {
        var deadline = TimeProvider.System.GetTimestamp();
        while (true)
        {
            var status = await StatusOfAsync(requestId);
            if (status is "COMPLETED" or "FAILED" or "CANCELED")
                return status;
            TimeProvider.System.GetElapsedTime(deadline).ShouldBeLessThan(TimeSpan.FromSeconds(20), $"task still {status}");
            await Task.Delay(20);
        }
    }

    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        if (text.Length == 0)
            return default;
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Host.DisposeAsync();
    }
}

using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using QwenBatch.Dashboard.Tests.Browser;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Simulator;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Tests.Webhooks;

/// <summary>
/// <c>serve</c> with its engine (<see cref="FleetServe"/>), WaveSpeed webhooks on: Kestrel on loopback at the port
/// <c>Webhooks:PublicUrl</c> names, and the simulator, on loopback too, as the WaveSpeed account (its webhook secret fixed, so a test can sign deliveries of its own; <c>Simulator:*</c> settings are
/// its options). One per test class.
/// </summary>
public abstract class WebhookServe(IReadOnlyDictionary<string, string?> settings) : IAsyncLifetime
{
    public const string Secret = "whsec_dGVzdC1zZWNyZXQtbm90LWJhc2U2NA==";
    private const string ApiKey = "wavespeed-test-key";

    private SimulatorHost? _simulator;
    private FleetServe? _serve;

    public string BaseUrl => (_serve ?? throw new InvalidOperationException("Not started.")).BaseUrl;

    public Uri SimulatorUrl => (_simulator ?? throw new InvalidOperationException("Not started.")).BaseUrl;

    internal IStore Store => (_serve ?? throw new InvalidOperationException("Not started.")).Store;

    public async Task InitializeAsync()
    {
        var options = new SimulatorOptions { LatencyMin = TimeSpan.FromSeconds(0.8), LatencyMax = TimeSpan.FromSeconds(1.2), WebhookSecret = Secret, MaxConcurrent = 100 };
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("Simulator").Bind(options);
        _simulator = await SimulatorHost.StartAsync(options, 0, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, CancellationToken.None);

        // Webhooks:PublicUrl names serve's own address, so its port is chosen before serve starts.
        var url = $"http://127.0.0.1:{FreePort()}";
        _serve = await FleetServe.StartAsync("dashboard_webhooks", new Dictionary<string, string?>(settings)
        {
            ["Providers:WaveSpeed:BaseUrl"] = _simulator.BaseUrl.AbsoluteUri,
            ["Providers:WaveSpeed:ApiKey"] = ApiKey,
            ["Providers:WaveSpeed:PricePerImage"] = "0.02",
            ["Providers:WaveSpeed:RequestTimeout"] = "00:00:10",
            ["Webhooks:PublicUrl"] = url,
        }, withSimulator: false, url);
    }

    public async Task DisposeAsync()
    {
        if (_serve is not null)
        {
            await _serve.DisposeAsync();
        }

        if (_simulator is not null)
        {
            await _simulator.DisposeAsync();
        }
    }

    /// <summary>Uploads <paramref name="edits"/> rows for WaveSpeed through the API, as a user would.</summary>
    public async Task<long> UploadAsync(string name, int edits)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync($"{BaseUrl}/api/batches?provider=wavespeed&name={name}", TestManifests.Upload(TestManifests.Csv(edits)));
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("batch").GetInt64();
    }

    internal Task<IReadOnlyList<EditRecord>> WaitForAsync(long batchId, Func<IReadOnlyList<EditRecord>, bool> condition, string what) =>
        BrowserSession.WaitForAsync(Store, batchId, condition, what);

    /// <summary>The simulator's counters.</summary>
    public async Task<JsonElement> SimulatorStatsAsync()
    {
        using var http = new HttpClient();
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri(SimulatorUrl, "_sim/stats")));
        return json.RootElement.Clone();
    }

    /// <summary>serve's <c>/metrics</c>, line by line.</summary>
    public async Task<string[]> MetricsAsync()
    {
        using var http = new HttpClient();
        return (await http.GetStringAsync($"{BaseUrl}/metrics")).Split('\n');
    }

    /// <summary>What the simulator's result endpoint says of a task now: the body WaveSpeed would deliver.</summary>
    public async Task<string> PredictionAsync(string requestId)
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri(SimulatorUrl, $"api/v3/predictions/{requestId}/result")));
        return json.RootElement.GetProperty("data").GetRawText();
    }

    /// <summary>Posts a delivery to serve's receiver, signed as WaveSpeed documents unless <paramref name="signature"/> is given.</summary>
    public async Task<HttpResponseMessage> DeliverAsync(string body, string id, DateTimeOffset signedAt, string? signature = null, bool withHeaders = true)
    {
        var stamp = signedAt.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{BaseUrl}/webhooks/wavespeed") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (withHeaders)
        {
            request.Headers.Add("webhook-id", id);
            request.Headers.Add("webhook-timestamp", stamp);
            request.Headers.Add("webhook-signature", signature ?? Sign(id, stamp, body));
        }

        using var http = new HttpClient();
        return await http.SendAsync(request);
    }

    public static string Sign(string id, string stamp, string body) =>
        "v3," + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret["whsec_".Length..]), Encoding.UTF8.GetBytes($"{id}.{stamp}.{body}")));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Tasks of about a second whose deliveries all arrive.</summary>
public sealed class DeliveringServe() : WebhookServe(new Dictionary<string, string?>());

/// <summary>Every delivery lost at the simulator; the fallback poll comes a second past the expected completion.</summary>
public sealed class LosingServe() : WebhookServe(new Dictionary<string, string?>
{
    ["Simulator:WebhookDropRate"] = "1",
    ["Webhooks:FallbackMargin"] = "00:00:01",
    ["Worker:MaxPollInterval"] = "00:00:02",
});

/// <summary>
/// Tasks that finish in about a second whose own deliveries come only after 10 minutes and whose fallback poll is as far
/// away: the edits stay parked for the deliveries a test signs and posts itself.
/// </summary>
public sealed class ParkedServe() : WebhookServe(new Dictionary<string, string?>
{
    ["Simulator:WebhookDelayMin"] = "00:10:00",
    ["Simulator:WebhookDelayMax"] = "00:10:00",
    ["Webhooks:FallbackMargin"] = "00:10:00",
});

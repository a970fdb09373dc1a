using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>
/// <c>serve</c> as a fleet member runs it (<see cref="FleetServe"/>) with the in-process simulator on loopback (tasks
/// taking the given time); Debian's Chromium driven by Playwright. One per test class (a class fixture). Screenshots land in
/// the test output's <c>screenshots</c> folder.
/// </summary>
public abstract class BrowserSession(string latencyMin, string latencyMax) : IAsyncLifetime
{
    /// <summary>How long a test waits for the engine; generous for a loaded machine, never asserted as a duration.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    public static readonly string Screenshots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;

    private FleetServe? _serve;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        _serve = await FleetServe.StartAsync("dashboard_browser", new Dictionary<string, string?>
        {
            ["Simulator:LatencyMin"] = latencyMin,
            ["Simulator:LatencyMax"] = latencyMax,
            ["Simulator:MaxConcurrent"] = "100",
            ["Providers:Simulator:PricePerImage"] = "0.02",
            ["Providers:Simulator:RequestTimeout"] = "00:00:10",
        }, withSimulator: true);
        BaseUrl = _serve.BaseUrl;
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (_serve is not null)
        {
            await _serve.DisposeAsync();
        }
    }

    public string BaseUrl { get; private set; } = "";

    internal IStore Store => (_serve ?? throw new InvalidOperationException("Not started.")).Store;

    /// <summary>A page of a fresh browser context, with what went wrong in it (uncaught errors, failed requests, blocked content) collected.</summary>
    public async Task<(IPage Page, List<string> Problems)> NewPageAsync()
    {
        var context = await (_browser ?? throw new InvalidOperationException("Not started.")).NewContextAsync();
        var page = await context.NewPageAsync();
        var problems = new List<string>();
        page.PageError += (_, error) => problems.Add($"page error: {error}");

        // A refused script request (Hangfire's stats poll, a button's command) or a missing stylesheet or font; the browser's
        // own favicon request is the one 404 a page of ours does not cause.
        page.Response += (_, response) =>
        {
            if (response.Status >= 400 && !response.Url.EndsWith("/favicon.ico", StringComparison.Ordinal))
            {
                problems.Add($"HTTP {response.Status}: {response.Request.Method} {response.Url}");
            }
        };
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && message.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase))
            {
                problems.Add($"console: {message.Text}");
            }
        };
        return (page, problems);
    }

    /// <summary>Uploads a manifest of <paramref name="edits"/> rows through the API, as a user would.</summary>
    public async Task<long> UploadAsync(string name, int edits)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync($"{BaseUrl}/api/batches?provider=simulator&name={name}", TestManifests.Upload(TestManifests.Csv(edits)));
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("batch").GetInt64();
    }

    /// <summary>Waits until <paramref name="condition"/> holds of the batch's edits; fails the test after <see cref="Patience"/>.</summary>
    internal Task<IReadOnlyList<EditRecord>> WaitForAsync(long batchId, Func<IReadOnlyList<EditRecord>, bool> condition, string what) =>
        WaitForAsync(Store, batchId, condition, what);

    /// <summary>Waits until <paramref name="condition"/> holds of a batch's edits in <paramref name="store"/>; fails the test after <see cref="Patience"/>.</summary>
    internal static async Task<IReadOnlyList<EditRecord>> WaitForAsync(IStore store, long batchId, Func<IReadOnlyList<EditRecord>, bool> condition, string what)
    {
        var waited = TimeProvider.System.GetTimestamp();
        IReadOnlyList<EditRecord> edits = [];
        while (TimeProvider.System.GetElapsedTime(waited) < Patience)
        {
            edits = await store.GetEditsAsync(batchId, CancellationToken.None);
            if (condition(edits))
            {
                return edits;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"Batch {batchId} never {what}: {string.Join(", ", edits.Select(e => $"edit {e.Id} {e.State} job={e.HangfireJob} error={e.Error}"))}");
    }

    /// <summary>The simulator's counters, from its stats endpoint (its port is in the state folder, as <c>run</c> keeps it).</summary>
    public async Task<JsonDocument> SimulatorStatsAsync()
    {
        var port = await File.ReadAllTextAsync(Path.Combine((_serve ?? throw new InvalidOperationException("Not started.")).State, "simulator.port"));
        using var http = new HttpClient();
        return JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port.Trim()}/_sim/stats"));
    }

    /// <summary>The batch page reloads itself every 2 s until the batch is settled; wait for that render.</summary>
    public static async Task WaitUntilDoneAsync(IPage page) =>
        await page.WaitForSelectorAsync("#status[data-done=true]", new() { Timeout = (float)Patience.TotalMilliseconds });
}

/// <summary>Tasks of about a second: batches finish while a test watches.</summary>
public sealed class QuickTasksServe() : BrowserSession("00:00:00.800", "00:00:01.200");

/// <summary>
/// Tasks of 30–40 s: however slowly a loaded machine loads a page and clicks, the edits are still at the provider when
/// the test cancels or deletes them.
/// </summary>
public sealed class SlowTasksServe() : BrowserSession("00:00:30", "00:00:40");

using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Playwright;
using QwenBatch.Cli.Hosting;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>
/// <c>serve</c> as a user meets it: real Kestrel on loopback, a worker, the in-process simulator, real PostgreSQL, and
/// Debian's Chromium driven by Playwright. Screenshots land in the test output's <c>screenshots</c> folder.
/// </summary>
public sealed class DashboardBrowserTests : IAsyncLifetime
{
    private static readonly string Screenshots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;
    private readonly string _folder = Directory.CreateTempSubdirectory("qwenbatch-serve-").FullName;
    private string _database = "";
    private Runtime? _runtime;
    private WebApplication? _app;
    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private string _baseUrl = "";

    public async Task InitializeAsync()
    {
        _database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("dashboard_browser");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = _database,
            ["Storage:Root"] = Path.Combine(_folder, "output"),
            ["State:Directory"] = Path.Combine(_folder, "state"),
            ["Dashboard:InputRoot"] = TestManifests.Samples,
            ["Worker:Concurrency"] = "2",
            ["Simulator:LatencyMin"] = "00:00:00.800",
            ["Simulator:LatencyMax"] = "00:00:01.200",
            ["Providers:Simulator:PricePerImage"] = "0.02",
            ["Providers:Simulator:RequestTimeout"] = "00:00:10",
        }).Build();
        _runtime = await Runtime.StartAsync(configuration, withSimulator: true, CancellationToken.None);
        _app = await ServeHost.StartAsync(configuration, _runtime, "http://127.0.0.1:0", withWorker: true, CancellationToken.None);
        _baseUrl = _app.Urls.First().TrimEnd('/');
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
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        if (_runtime is not null)
        {
            await _runtime.DisposeAsync();
        }

        await (await PostgresServer.GetAsync()).DropDatabaseAsync(_database);
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task UploadedManifest_Finishes_AndItsJobPageShowsTheOutput()
    {
        var batch = await UploadAsync("browser-finish", 3);
        var page = await _browser!.NewPageAsync();

        await page.GotoAsync($"{_baseUrl}/dashboard/batches/{batch}");
        await WaitUntilDoneAsync(page);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "batch-finished.png"), FullPage = true });

        (await page.TextContentAsync("[data-count=succeeded]")).ShouldBe("3");
        await page.GotoAsync($"{_baseUrl}/dashboard/jobs/succeeded?batch={batch}");
        await page.ClickAsync("a[href^='/dashboard/job/']");
        (await page.TextContentAsync("#state")).ShouldBe("succeeded");
        var output = page.Locator("img[alt='output 1']");
        await output.WaitForAsync();
        (await output.EvaluateAsync<int>("img => img.naturalWidth")).ShouldBeGreaterThan(0);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "job-page.png"), FullPage = true });

        await page.GotoAsync($"{_baseUrl}/dashboard");
        (await page.TextContentAsync("[data-state=succeeded] b")).ShouldBe("3");
        (await page.GetAttributeAsync("#history-hour", "data-succeeded")).ShouldBe("3");
        (await page.GetAttributeAsync("#history-day", "data-succeeded")).ShouldBe("3");
        var tallest = await page.EvalOnSelectorAllAsync<double>("#history-hour rect[fill='#3a3']", "rs => Math.max(...rs.map(r => r.getBBox().height))");
        tallest.ShouldBeGreaterThan(100, "the busiest hour's bar is drawn at the chart's full height (120)");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "overview.png"), FullPage = true });

        await page.GotoAsync($"{_baseUrl}/dashboard/servers");
        (await page.Locator("#servers tr.live").CountAsync()).ShouldBe(1);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "servers.png"), FullPage = true });
    }

    [Fact]
    public async Task CancelButton_OnARunningBatch_CancelsItsWaitingJobs()
    {
        var batch = await UploadAsync("browser-cancel", 20);
        var page = await _browser!.NewPageAsync();
        await page.GotoAsync($"{_baseUrl}/dashboard/batches/{batch}");

        await page.ClickAsync("button.cancel");
        await WaitUntilDoneAsync(page);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "batch-cancelled.png"), FullPage = true });

        int.Parse(await page.TextContentAsync("[data-count=cancelled]") ?? "0", System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(0);
        (await page.ContentAsync()).ShouldContain("cancel requested");
    }

    private async Task<long> UploadAsync(string name, int jobs)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync($"{_baseUrl}/api/batches?provider=simulator&name={name}", TestManifests.Upload(TestManifests.Csv(jobs)));
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("batch").GetInt64();
    }

    /// <summary>The batch page reloads itself every 2 s until the batch is settled; wait for that render (at most a minute).</summary>
    private static async Task WaitUntilDoneAsync(IPage page) =>
        await page.WaitForSelectorAsync("#status[data-done=true]", new() { Timeout = 60_000 });
}

using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Playwright;
using QwenBatch.Cli.Hosting;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Storage;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>
/// <c>serve</c> as a user meets it: real Kestrel on loopback, a worker, the in-process simulator (tasks taking the given
/// time), real PostgreSQL, and Debian's Chromium driven by Playwright. Screenshots land in the test output's
/// <c>screenshots</c> folder.
/// </summary>
public abstract class BrowserSession(string latencyMin, string latencyMax) : IAsyncLifetime
{
    protected static readonly string Screenshots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;
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
            ["Simulator:LatencyMin"] = latencyMin,
            ["Simulator:LatencyMax"] = latencyMax,
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

    protected IBrowser Browser => _browser ?? throw new InvalidOperationException("Not started.");

    protected string BaseUrl => _baseUrl;

    /// <summary>The session's own temporary folder (outputs under <c>output</c>), deleted with it.</summary>
    protected string Folder => _folder;

    protected IJobStore Store => (_runtime ?? throw new InvalidOperationException("Not started.")).Store;

    protected async Task<long> UploadAsync(string name, int jobs)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync($"{_baseUrl}/api/batches?provider=simulator&name={name}", TestManifests.Upload(TestManifests.Csv(jobs)));
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("batch").GetInt64();
    }

    /// <summary>The batch page reloads itself every 2 s until the batch is settled; wait for that render (at most a minute).</summary>
    protected static async Task WaitUntilDoneAsync(IPage page) =>
        await page.WaitForSelectorAsync("#status[data-done=true]", new() { Timeout = 60_000 });
}

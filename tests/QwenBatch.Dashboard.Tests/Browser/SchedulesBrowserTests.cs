using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Playwright;
using QwenBatch.Cli.Hosting;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Schedules;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>
/// The schedules page as an operator uses it: <c>serve</c> on real Kestrel with a worker and the in-process simulator, real
/// PostgreSQL, Debian's Chromium driven by Playwright (set up as <see cref="DashboardBrowserTests"/> does).
/// </summary>
public sealed class SchedulesBrowserTests : IAsyncLifetime
{
    private static readonly string Screenshots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "screenshots")).FullName;
    private readonly string _folder = Directory.CreateTempSubdirectory("qwenbatch-schedules-").FullName;
    private string _database = "";
    private Runtime? _runtime;
    private WebApplication? _app;
    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private string _baseUrl = "";

    public async Task InitializeAsync()
    {
        _database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("schedules_browser");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = _database,
            ["Storage:Root"] = Path.Combine(_folder, "output"),
            ["State:Directory"] = Path.Combine(_folder, "state"),
            ["Worker:Concurrency"] = "2",
            ["Simulator:LatencyMin"] = "00:00:00.300",
            ["Simulator:LatencyMax"] = "00:00:00.600",
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
    public async Task TriggerNow_OnTheSchedulesPage_MakesABatchTheWorkerFinishes()
    {
        var manifest = Path.Combine(_folder, "banners.csv");
        var image = Path.Combine(TestManifests.Samples, "images", "mug.png");
        await File.WriteAllTextAsync(manifest, $"id,prompt,images\nbanner-de,Replace the headline,{image}\nbanner-fr,Replace the headline,{image}\n");
        var schedule = new ScheduleDefinition("banners", "0 2 * * *", "Europe/Berlin", manifest, "simulator", Path.Combine(_folder, "output"));
        var next = CronSchedule.Parse(schedule.Cron, schedule.TimeZone).NextAfter(DateTimeOffset.UtcNow)!.Value;
        await _runtime!.Store.AddScheduleAsync(schedule, next, CancellationToken.None);
        var page = await _browser!.NewPageAsync();

        await page.GotoAsync($"{_baseUrl}/dashboard");
        await page.ClickAsync("nav a[href='/dashboard/schedules']");
        (await page.TextContentAsync("tr[data-schedule=banners] td.state")).ShouldBe("active");
        await page.ClickAsync("tr[data-schedule=banners] button.trigger");
        await page.WaitForSelectorAsync("#message");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "schedules-triggered.png"), FullPage = true });

        (await page.TextContentAsync("#message"))!.ShouldContain("triggered: batch 'banners-");
        await page.ClickAsync("tr[data-schedule=banners] td.last a");
        await page.WaitForSelectorAsync("#status[data-done=true]", new() { Timeout = 60_000 });
        (await page.TextContentAsync("[data-count=succeeded]")).ShouldBe("2");
        (await _runtime.Store.GetSchedulesAsync(CancellationToken.None)).Single().NextAt.ShouldBe(next);
    }
}

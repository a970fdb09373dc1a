using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Schedules;

namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>
/// The schedules page as an operator uses it: <c>serve</c> on real Kestrel with a worker and the in-process simulator, real
/// PostgreSQL, Debian's Chromium driven by Playwright (the <see cref="BrowserSession"/> every browser test shares).
/// </summary>
public sealed class SchedulesBrowserTests() : BrowserSession("00:00:00.300", "00:00:00.600")
{
    [Fact]
    public async Task TriggerNow_OnTheSchedulesPage_MakesABatchTheWorkerFinishes()
    {
        var manifest = Path.Combine(Folder, "banners.csv");
        var image = Path.Combine(TestManifests.Samples, "images", "mug.png");
        await File.WriteAllTextAsync(manifest, $"id,prompt,images\nbanner-de,Replace the headline,{image}\nbanner-fr,Replace the headline,{image}\n");
        var schedule = new ScheduleDefinition("banners", "0 2 * * *", "Europe/Berlin", manifest, "simulator", Path.Combine(Folder, "output"));
        var next = CronSchedule.Parse(schedule.Cron, schedule.TimeZone).NextAfter(DateTimeOffset.UtcNow)!.Value;
        await Store.AddScheduleAsync(schedule, next, CancellationToken.None);
        var page = await Browser.NewPageAsync();

        await page.GotoAsync($"{BaseUrl}/dashboard");
        await page.ClickAsync("nav a[href='/dashboard/schedules']");
        (await page.TextContentAsync("tr[data-schedule=banners] td.state")).ShouldBe("active");
        await page.ClickAsync("tr[data-schedule=banners] button.trigger");
        await page.WaitForSelectorAsync("#message");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "schedules-triggered.png"), FullPage = true });

        (await page.TextContentAsync("#message"))!.ShouldContain("triggered: batch 'banners-");
        await page.ClickAsync("tr[data-schedule=banners] td.last a");
        await page.WaitForSelectorAsync("#status[data-done=true]", new() { Timeout = 60_000 });
        (await page.TextContentAsync("[data-count=succeeded]")).ShouldBe("2");
        (await Store.GetSchedulesAsync(CancellationToken.None)).Single().NextAt.ShouldBe(next);
    }
}

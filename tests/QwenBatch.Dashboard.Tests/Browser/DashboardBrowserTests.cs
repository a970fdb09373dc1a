namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>An uploaded batch finishing, as the batch, job, overview and servers pages show it in Chromium.</summary>
public sealed class DashboardBrowserTests() : BrowserSession("00:00:00.800", "00:00:01.200")
{
    [Fact]
    public async Task UploadedManifest_Finishes_AndItsJobPageShowsTheOutput()
    {
        var batch = await UploadAsync("browser-finish", 3);
        var page = await Browser.NewPageAsync();

        await page.GotoAsync($"{BaseUrl}/dashboard/batches/{batch}");
        await WaitUntilDoneAsync(page);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "batch-finished.png"), FullPage = true });

        (await page.TextContentAsync("[data-count=succeeded]")).ShouldBe("3");
        await page.GotoAsync($"{BaseUrl}/dashboard/jobs/succeeded?batch={batch}");
        await page.ClickAsync("a[href^='/dashboard/job/']");
        (await page.TextContentAsync("#state")).ShouldBe("succeeded");
        var output = page.Locator("img[alt='output 1']");
        await output.WaitForAsync();
        (await output.EvaluateAsync<int>("img => img.naturalWidth")).ShouldBeGreaterThan(0);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "job-page.png"), FullPage = true });

        await page.GotoAsync($"{BaseUrl}/dashboard");
        (await page.TextContentAsync("[data-state=succeeded] b")).ShouldBe("3");
        (await page.GetAttributeAsync("#history-hour", "data-succeeded")).ShouldBe("3");
        (await page.GetAttributeAsync("#history-day", "data-succeeded")).ShouldBe("3");
        var tallest = await page.EvalOnSelectorAllAsync<double>("#history-hour rect[fill='#3a3']", "rs => Math.max(...rs.map(r => r.getBBox().height))");
        tallest.ShouldBeGreaterThan(100, "the busiest hour's bar is drawn at the chart's full height (120)");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "overview.png"), FullPage = true });

        await page.GotoAsync($"{BaseUrl}/dashboard/servers");
        (await page.Locator("#servers tr.live").CountAsync()).ShouldBe(1);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "servers.png"), FullPage = true });
    }
}

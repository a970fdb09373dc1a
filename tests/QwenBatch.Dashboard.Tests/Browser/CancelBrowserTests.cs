namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>
/// The cancel button on a running batch. Tasks take 30–40 s at the simulator, so however slowly a loaded machine loads
/// the page and clicks, there are jobs left to cancel: waiting ones end at once, running ones by the provider's cancel.
/// </summary>
public sealed class CancelBrowserTests() : BrowserSession("00:00:30", "00:00:40")
{
    [Fact]
    public async Task CancelButton_OnARunningBatch_CancelsItsWaitingJobs()
    {
        var batch = await UploadAsync("browser-cancel", 20);
        var page = await Browser.NewPageAsync();
        await page.GotoAsync($"{BaseUrl}/dashboard/batches/{batch}");

        await page.ClickAsync("button.cancel");
        await WaitUntilDoneAsync(page);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, "batch-cancelled.png"), FullPage = true });

        int.Parse(await page.TextContentAsync("[data-count=cancelled]") ?? "0", System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThan(0);
        (await page.ContentAsync()).ShouldContain("cancel requested");
    }
}

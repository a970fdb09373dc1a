using System.Globalization;
using Hangfire.States;
using QwenBatch.Edits;

namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>Stopping work from the pages: the batch page's cancel button, and Hangfire's Delete button on an edit's job.</summary>
public sealed class CancelBrowserTests(SlowTasksServe serve) : IClassFixture<SlowTasksServe>
{
    [Fact]
    public async Task CancelButton_OnARunningBatch_CancelsItsEditsAtTheProviderToo()
    {
        var batch = await serve.UploadAsync("browser-cancel", 20);
        await serve.WaitForAsync(batch, e => e.Any(x => x.State == EditState.AtProvider), "had an edit at the provider");
        var (page, problems) = await serve.NewPageAsync();
        await page.GotoAsync($"{serve.BaseUrl}/hangfire/batches/{batch}");

        // Hangfire's script asks for the button's confirmation, posts with the page's antiforgery token, then reloads.
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        await page.ClickAsync("button.cancel");
        await BrowserSession.WaitUntilDoneAsync(page);
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "batch-cancelled.png"), FullPage = true });

        // Tasks take 30 s or more, so nearly all are cancelled; a machine slow enough to let one finish first only moves it.
        var cancelled = await CountAsync(page, "cancelled");
        cancelled.ShouldBeGreaterThan(0);
        (cancelled + await CountAsync(page, "succeeded")).ShouldBe(20);
        (await page.TextContentAsync("#status"))!.ShouldContain("cancel requested");
        using var stats = await serve.SimulatorStatsAsync();
        stats.RootElement.GetProperty("cancels").GetInt64().ShouldBeGreaterThanOrEqualTo(1, "an edit at the provider is cancelled there");
        problems.ShouldBeEmpty();
    }

    [Fact]
    public async Task DeleteInHangfire_OnAnEditAtTheProvider_CancelsTheEditThereToo()
    {
        var batch = await serve.UploadAsync("browser-delete", 2);
        var edits = await serve.WaitForAsync(batch, e => e.Count == 2 && e.All(x => x.State == EditState.AtProvider), "had both edits at the provider");
        var (doomed, kept) = (edits[0], edits[1]);
        var (page, problems) = await serve.NewPageAsync();

        // From the batch page to the edit's Hangfire job, whose Delete button asks for a confirmation first.
        await page.GotoAsync($"{serve.BaseUrl}/hangfire/batches/{batch}");
        await page.ClickAsync($"a.job-link[href='/hangfire/jobs/details/{doomed.HangfireJob}']");
        await page.WaitForURLAsync($"{serve.BaseUrl}/hangfire/jobs/details/{doomed.HangfireJob}");
        (await page.ContentAsync()).ShouldContain("Delete on this job cancels the edit, at the provider too.");
        (await page.TextContentAsync(".state-card-title"))!.ShouldContain("At provider");
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        await page.ClickAsync($"button[data-ajax='/hangfire/jobs/actions/delete/{doomed.HangfireJob}']");

        // The script reloads the page once the command is done: the job is deleted, and its edit is cancelled at the provider.
        await page.Locator(".state-card-title").First.Filter(new() { HasTextString = DeletedState.StateName }).WaitForAsync(new() { Timeout = (float)BrowserSession.Patience.TotalMilliseconds });
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "hangfire-job-deleted.png"), FullPage = true });
        var after = await serve.WaitForAsync(batch, e => e.Single(x => x.Id == doomed.Id).State == EditState.Cancelled, "cancelled the deleted job's edit");
        after.Single(x => x.Id == kept.Id).State.ShouldNotBe(EditState.Cancelled, "only the deleted job's edit is cancelled");
        using var stats = await serve.SimulatorStatsAsync();
        stats.RootElement.GetProperty("cancels").GetInt64().ShouldBeGreaterThanOrEqualTo(1);
        problems.ShouldBeEmpty();
    }

    private static async Task<int> CountAsync(Microsoft.Playwright.IPage page, string state) =>
        int.Parse(await page.TextContentAsync($"[data-count={state}]") ?? "0", CultureInfo.InvariantCulture);
}

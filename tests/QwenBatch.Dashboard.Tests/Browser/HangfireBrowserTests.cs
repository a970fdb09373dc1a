using System.Text.Json;
using Hangfire.States;
using QwenBatch.Edits;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Hangfire.States;

namespace QwenBatch.Dashboard.Tests.Browser;

/// <summary>A fleet member's edits as an operator follows them in Chromium: Hangfire's dashboard, and QwenBatch's pages linking into it.</summary>
public sealed class HangfireBrowserTests(QuickTasksServe serve) : IClassFixture<QuickTasksServe>
{
    [Fact]
    public async Task FinishedBatch_ItsEditsAreSucceededJobsInHangfire_WhoseHistoryTellsTheStory()
    {
        var batch = await serve.UploadAsync("browser-story", 3);
        var edits = await serve.WaitForAsync(batch, e => e.Count == 3 && e.All(x => x.State.IsSettled()), "settled");
        edits.ShouldAllBe(e => e.State == EditState.Succeeded && e.HangfireJob != null && e.RequestId != null);
        var (page, problems) = await serve.NewPageAsync();

        // The dashboard's home: its realtime graph polls the stats with a POST that carries the page's antiforgery token.
        var stats = page.WaitForResponseAsync(r => r.Url == $"{serve.BaseUrl}/hangfire/stats" && r.Request.Method == "POST");
        await page.GotoAsync($"{serve.BaseUrl}/hangfire");
        (await stats).Status.ShouldBe(200);

        // Its history graph (succeeded per hour over the last day) counts the edits, as the imitation's graph did.
        var hourly = JsonSerializer.Deserialize<Dictionary<string, long>>((await page.GetAttributeAsync("#historyGraph", "data-succeeded"))!)!;
        hourly.Values.Sum().ShouldBeGreaterThanOrEqualTo(3, "the batch's edits succeeded within the last hour");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "hangfire-home.png"), FullPage = true });

        // Through Hangfire's own navigation to the succeeded jobs.
        await page.ClickAsync("a[href='/hangfire/jobs/enqueued']");
        await page.ClickAsync("a[href='/hangfire/jobs/succeeded']");
        await page.WaitForSelectorAsync(".js-jobs-list-row");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "hangfire-succeeded.png"), FullPage = true });
        foreach (var edit in edits)
        {
            var link = page.Locator($"a.job-method[href='/hangfire/jobs/details/{edit.HangfireJob}']");
            (await link.CountAsync()).ShouldBe(1, $"edit {edit.Id}'s job {edit.HangfireJob} is listed");
            (await link.TextContentAsync())!.Trim().ShouldBe($"Edit {edit.Id}");
        }

        // One edit's job page: its state history (the page lists it newest first, ending with the job's creation), with
        // the provider's request id at the provider.
        var first = edits[0];
        await page.ClickAsync($"a.job-method[href='/hangfire/jobs/details/{first.HangfireJob}']");
        await page.WaitForSelectorAsync(".state-card");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "hangfire-job.png"), FullPage = true });
        var states = await page.EvalOnSelectorAllAsync<string[]>(".state-card-title",
            "titles => titles.map(t => { const c = t.cloneNode(true); c.querySelector('small')?.remove(); return c.textContent.trim(); })");
        Enumerable.Reverse(states).ShouldBe(["Created", EnqueuedState.StateName, ProcessingState.StateName, AtProviderState.StateName, EnqueuedState.StateName, ProcessingState.StateName, SucceededState.StateName]);
        var atProvider = page.Locator(".state-card", new() { Has = page.Locator(".state-card-title", new() { HasTextString = AtProviderState.StateName }) });
        (await atProvider.Locator(".state-card-body").TextContentAsync())!.ShouldContain(first.RequestId!);

        // The job page shows its edit, which links back to its batch.
        (await page.TextContentAsync("#edit-state")).ShouldBe("succeeded");
        (await page.TextContentAsync("#request-id")).ShouldBe(first.RequestId);
        await page.ClickAsync("#batch-link");
        await page.WaitForURLAsync($"{serve.BaseUrl}/hangfire/batches/{batch}");
        (await page.TextContentAsync("[data-count=succeeded]")).ShouldBe("3");

        problems.ShouldBeEmpty();
    }

    [Fact]
    public async Task FromTheBatchList_ToABatch_ToAnEditsJobWithItsThumbnails_AndBack()
    {
        var batch = await serve.UploadAsync("browser-finish", 2);
        var (page, problems) = await serve.NewPageAsync();

        // Hangfire's navigation has a Batches entry; the list links to the batch, whose page reloads until it is settled.
        await page.GotoAsync($"{serve.BaseUrl}/hangfire");
        await page.ClickAsync("a[href='/hangfire/batches']");
        await page.ClickAsync($"#batches a[href='/hangfire/batches/{batch}']");
        await BrowserSession.WaitUntilDoneAsync(page);
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "batch-finished.png"), FullPage = true });
        (await page.TextContentAsync("[data-count=succeeded]")).ShouldBe("2");
        (await page.TextContentAsync("#spent")).ShouldBe("$0.04");

        // An edit's Hangfire job page: the edit above the job's history, with its input and output as thumbnails.
        await page.ClickAsync("a.job-link");
        await page.WaitForSelectorAsync("#edit");
        (await page.TextContentAsync("#edit-state")).ShouldBe("succeeded");
        (await page.TextContentAsync("#cost")).ShouldBe("$0.02");
        (await page.TextContentAsync("#prompt")).ShouldNotBeNullOrWhiteSpace();
        foreach (var thumbnail in new[] { "img[alt='input 1']", "img[alt='output 1']" })
        {
            var image = page.Locator(thumbnail);
            await image.WaitForAsync();
            await page.WaitForFunctionAsync($"() => document.querySelector(\"{thumbnail}\").complete");
            (await image.EvaluateAsync<int>("img => img.naturalWidth")).ShouldBeGreaterThan(0, thumbnail);
        }

        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "edit-job-page.png"), FullPage = true });

        // Back to the batch, then to the list, whose cards and spend count the batch.
        await page.ClickAsync("#batch-link");
        await page.WaitForURLAsync($"{serve.BaseUrl}/hangfire/batches/{batch}");
        await page.ClickAsync("a[href='/hangfire/batches']");
        int.Parse((await page.TextContentAsync("[data-state=succeeded] .metric-body"))!, System.Globalization.CultureInfo.InvariantCulture).ShouldBeGreaterThanOrEqualTo(2);
        (await page.TextContentAsync("#spend [data-provider=simulator]"))!.ShouldContain("$");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "batches.png"), FullPage = true });
        problems.ShouldBeEmpty();
    }

    [Fact]
    public async Task UploadForm_OnTheBatchesPage_TakesTheManifestWithItsImages_AndShowsAnInvalidOnesErrors()
    {
        var (page, problems) = await serve.NewPageAsync();
        await page.GotoAsync($"{serve.BaseUrl}/hangfire/batches");

        // A manifest with an empty prompt on line 3: its error is listed under the form, and nothing is imported.
        var invalid = Path.Combine(Path.GetTempPath(), $"invalid-{Guid.NewGuid():N}.csv");
        await File.WriteAllTextAsync(invalid, "id,prompt,images\nok,Make it blue,images/mug.png\nbad,,images/mug.png\n");
        await page.SetInputFilesAsync("#upload input[name=manifest]", invalid);
        await page.SetInputFilesAsync("#upload input[name=images]", Path.Combine(TestManifests.Samples, "images", "mug.png"));
        await page.SelectOptionAsync("#upload select[name=provider]", "simulator");
        await page.ClickAsync("#upload button[type=submit]");
        var error = page.Locator("#upload .upload-errors li").First;
        await error.WaitForAsync();
        (await error.TextContentAsync()).ShouldNotBeNull().ShouldStartWith("line 3, prompt:");
        File.Delete(invalid);
        problems.ShouldBe([$"HTTP 400: POST {serve.BaseUrl}/api/batches?provider=simulator"], "the refused upload, and nothing else");
        problems.Clear();

        // The sample manifest with its five images, as a user picks them: the page moves to the new batch, which finishes.
        await page.SetInputFilesAsync("#upload input[name=manifest]", Path.Combine(TestManifests.Samples, "products.csv"));
        await page.SetInputFilesAsync("#upload input[name=images]", Directory.GetFiles(Path.Combine(TestManifests.Samples, "images")));
        await page.FillAsync("#upload input[name=name]", "browser-form");
        await page.ClickAsync("#upload button[type=submit]");
        await page.WaitForURLAsync(new System.Text.RegularExpressions.Regex("/hangfire/batches/[0-9]+$"));
        await BrowserSession.WaitUntilDoneAsync(page);
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserSession.Screenshots, "batch-uploaded-by-form.png"), FullPage = true });
        (await page.TextContentAsync("[data-count=succeeded]")).ShouldBe("4");
        (await page.TextContentAsync("h1.page-header")).ShouldNotBeNull().ShouldContain("browser-form");
        problems.ShouldBeEmpty();
    }
}

using System.Net;
using System.Text.RegularExpressions;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Schedules;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Tests.Pages;

/// <summary>The schedules page and its forms on TestServer over real PostgreSQL.</summary>
public sealed partial class SchedulesPageTests : IAsyncLifetime
{
    // 2026-03-29 02:00 Europe/Berlin does not exist (spring forward): the 02:00 run of that night is at 03:00 CEST = 01:00 UTC.
    private static readonly DateTimeOffset NextAt = new(2026, 3, 29, 1, 0, 0, TimeSpan.Zero);
    private readonly DashboardFactory _factory = new();
    private string _manifest = "";

    public async Task InitializeAsync()
    {
        await _factory.InitializeAsync();
        _manifest = Path.Combine(_factory.StorageRoot, "nightly.csv");
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,White background,https://example.com/mug.png\ncup,White background,https://example.com/cup.png\n");
        await _factory.Store.AddScheduleAsync(
            new ScheduleDefinition("nightly", "0 2 * * *", "Europe/Berlin", _manifest, "simulator", _factory.StorageRoot), NextAt, CancellationToken.None);
    }

    public Task DisposeAsync() => ((IAsyncLifetime)_factory).DisposeAsync();

    [Fact]
    public async Task GetSchedules_ScheduleWithALastRun_ShowsCronZoneNextRunInUtcAndLocalAndTheBatchLink()
    {
        var batch = await _factory.Store.ImportBatchAsync(
            new Batches.NewBatch("nightly-20260328-0200", _manifest, "simulator", Path.Combine(_factory.StorageRoot, "nightly-20260328-0200")), Array.Empty<Batches.NewEdit>(), CancellationToken.None);
        var last = NextAt.AddDays(-1);
        await _factory.Store.ClaimOccurrenceAsync(new OccurrenceClaim("nightly", last, NextAt, "worker-1", TimeSpan.FromMinutes(5)), CancellationToken.None);
        await _factory.Store.RecordOccurrenceAsync(new ScheduleOutcome("nightly", last, last, batch.Batch.Name, null), CancellationToken.None);
        using var client = _factory.CreateClient();

        var html = await client.GetStringAsync("/dashboard/schedules");

        html.ShouldContain("<a href=\"/dashboard/schedules\">Schedules</a>");
        html.ShouldContain("<td>nightly</td><td><code>0 2 * * *</code></td><td>Europe/Berlin</td>");
        html.ShouldContain("2026-03-29T01:00:00Z<br>2026-03-29 03:00 Europe/Berlin");
        html.ShouldContain($"<a href=\"/dashboard/batches/{batch.Batch.Id}\">nightly-20260328-0200</a>");
        html.ShouldContain("<td class=\"state\">active</td>");
        html.ShouldContain("action=\"/dashboard/schedules/nightly/trigger\"");
        html.ShouldContain("action=\"/dashboard/schedules/nightly/pause\"");
    }

    [Fact]
    public async Task PostTrigger_WithTheFormToken_MakesOneBatchFromTheManifestAndLeavesTheNextRun()
    {
        using var client = _factory.CreateClient();
        var token = await FormTokenAsync(client, "trigger");

        using var first = await client.PostAsync("/dashboard/schedules/nightly/trigger", Form(token));
        var afterFirst = await first.Content.ReadAsStringAsync();
        using var second = await client.PostAsync("/dashboard/schedules/nightly/trigger", Form(token));

        first.StatusCode.ShouldBe(HttpStatusCode.OK);
        var batch = (await _factory.Store.GetBatchesAsync(CancellationToken.None)).ShouldHaveSingleItem();
        batch.Name.ShouldStartWith("nightly-");
        (await _factory.Store.GetJobsAsync(batch.Id, CancellationToken.None)).Count.ShouldBe(2);
        afterFirst.ShouldContain($"batch &#39;{batch.Name}&#39; enqueued");
        var schedule = (await _factory.Store.GetSchedulesAsync(CancellationToken.None)).Single();
        schedule.ShouldSatisfyAllConditions(() => schedule.NextAt.ShouldBe(NextAt), () => schedule.LastBatch.ShouldBe(batch.Name));

        // The same minute again (a double click): the occurrence is claimed, so no second batch. The clock may have
        // crossed a minute between the two posts; then the second is a new occurrence and a second batch is right.
        if ((await _factory.Store.GetOccurrencesAsync("nightly", CancellationToken.None)).Count == 1)
        {
            (await second.Content.ReadAsStringAsync()).ShouldContain("already ran this minute");
            (await _factory.Store.GetBatchesAsync(CancellationToken.None)).Count.ShouldBe(1);
        }
    }

    [Fact]
    public async Task PostTriggerAndPause_WithoutTheFormToken_AreRefusedAndChangeNothing()
    {
        using var client = _factory.CreateClient();

        using var trigger = await client.PostAsync("/dashboard/schedules/nightly/trigger", new FormUrlEncodedContent([]));
        using var pause = await client.PostAsync("/dashboard/schedules/nightly/pause", new FormUrlEncodedContent([]));
        using var forged = await client.PostAsync("/dashboard/schedules/nightly/pause", Form("not-a-token"));

        trigger.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        pause.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        forged.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await _factory.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
        (await _factory.Store.GetOccurrencesAsync("nightly", CancellationToken.None)).ShouldBeEmpty();
        (await _factory.Store.GetSchedulesAsync(CancellationToken.None)).Single().Paused.ShouldBeFalse();
    }

    [Fact]
    public async Task PostPauseThenResume_WithTheFormToken_PausesAndResumesFromTheNextOccurrence()
    {
        using var client = _factory.CreateClient();

        using var pause = await client.PostAsync("/dashboard/schedules/nightly/pause", Form(await FormTokenAsync(client, "pause")));
        var paused = (await _factory.Store.GetSchedulesAsync(CancellationToken.None)).Single();
        var pausedPage = await pause.Content.ReadAsStringAsync();
        using var resume = await client.PostAsync("/dashboard/schedules/nightly/resume", Form(await FormTokenAsync(client, "resume")));
        var resumed = (await _factory.Store.GetSchedulesAsync(CancellationToken.None)).Single();

        paused.Paused.ShouldBeTrue();
        pausedPage.ShouldContain("<td class=\"state\"><b>paused</b></td>");
        pausedPage.ShouldContain("action=\"/dashboard/schedules/nightly/resume\"");
        resumed.Paused.ShouldBeFalse();
        var expected = CronSchedule.Parse("0 2 * * *", "Europe/Berlin").NextAfter(DateTimeOffset.UtcNow.AddMinutes(-5));
        resumed.NextAt.ShouldBeGreaterThanOrEqualTo(expected!.Value);
        resumed.NextAt.ShouldBeLessThanOrEqualTo(DateTimeOffset.UtcNow.AddDays(1).AddHours(1));
    }

    [Fact]
    public async Task PostTrigger_ManifestInvalid_ShowsTheFailureAndTheFailedBatchPageListsTheErrors()
    {
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,,\n");
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync("/dashboard/schedules/nightly/trigger", Form(await FormTokenAsync(client, "trigger")));
        var page = await response.Content.ReadAsStringAsync();
        var batch = (await _factory.Store.GetBatchesAsync(CancellationToken.None)).ShouldHaveSingleItem();
        var batchPage = await client.GetStringAsync($"/dashboard/batches/{batch.Id}");

        page.ShouldContain("failed: ");
        page.ShouldContain($"<a href=\"/dashboard/batches/{batch.Id}\">{batch.Name}</a>");
        batchPage.ShouldContain("<div id=\"failure\">");
        batchPage.ShouldContain("prompt");
        File.Exists(Path.Combine(batch.StorageDir, "errors.csv")).ShouldBeTrue();
    }

    /// <summary>Reads the antiforgery token of one of the page's forms (the client keeps the cookie that goes with it).</summary>
    private static async Task<string> FormTokenAsync(HttpClient client, string action)
    {
        var html = await client.GetStringAsync("/dashboard/schedules");
        var form = FormPattern().Matches(html).Single(m => m.Groups["action"].Value.EndsWith("/" + action, StringComparison.Ordinal));
        return WebUtility.HtmlDecode(form.Groups["token"].Value);
    }

    private static FormUrlEncodedContent Form(string token) => new([new("__RequestVerificationToken", token)]);

    [GeneratedRegex("<form method=\"post\" action=\"(?<action>[^\"]+)\"[^>]*><input type=\"hidden\" name=\"__RequestVerificationToken\" value=\"(?<token>[^\"]+)\">")]
    private static partial Regex FormPattern();
}

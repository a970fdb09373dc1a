using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using QwenBatch.Batches;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Hangfire.States;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Tests.Hangfire;

/// <summary>
/// Hangfire's dashboard as <c>serve</c> mounts it at <c>/hangfire</c>, over Hangfire.PostgreSql: the gate's rule (loopback,
/// or the configured credentials), read-only, and its commands' antiforgery check. The edit's job is made as the feeder
/// makes it (<see cref="EditJobClient"/>) and parked waiting, as a throttled edit's job is; no server runs it.
/// </summary>
public sealed partial class HangfireDashboardTests : IAsyncLifetime
{
    private const string Remote = "203.0.113.7";
    private readonly ServeFactory _serve = new();

    public Task InitializeAsync() => _serve.InitializeAsync();

    public Task DisposeAsync() => _serve.DisposeAsync();

    [Fact]
    public async Task Hangfire_FromLoopback_AnswersWithItsDashboard()
    {
        using var client = await _serve.CreateClientAsync();

        using var home = await client.GetAsync("/hangfire");
        var servers = await client.GetStringAsync("/hangfire/servers");

        home.StatusCode.ShouldBe(HttpStatusCode.OK);
        var html = await home.Content.ReadAsStringAsync();
        html.ShouldContain("QwenBatch</title>");
        html.ShouldContain("href=\"/hangfire/jobs/enqueued\"");
        servers.ShouldContain("There are no active servers", customMessage: "serve --no-worker runs no Hangfire server");
    }

    [Fact]
    public async Task Hangfire_FromARemoteAddressWithoutCredentials_IsRefusedAndItsCommandsDoNothing()
    {
        var (edit, job) = await ParkedEditJobAsync();
        using var client = await _serve.CreateClientAsync(Remote);

        using var home = await client.GetAsync("/hangfire");
        using var details = await client.GetAsync($"/hangfire/jobs/details/{job}");
        using var stats = await client.PostAsync("/hangfire/stats", new FormUrlEncodedContent([]));
        using var delete = await client.PostAsync($"/hangfire/jobs/actions/delete/{job}", new FormUrlEncodedContent([]));

        home.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        details.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        stats.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        delete.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await delete.Content.ReadAsStringAsync()).ShouldContain("Only local requests");
        JobState(job).ShouldBe(WaitingState.StateName);
        (await _serve.Store.GetEditAsync(edit, CancellationToken.None))!.State.ShouldBe(EditState.Pending);
    }

    [Fact]
    public async Task Hangfire_FromARemoteAddressWithBasicAuth_IsAnsweredAndWithoutItAsksForIt()
    {
        _serve.Settings["Dashboard:User"] = "ops";
        _serve.Settings["Dashboard:Password"] = "correct horse";
        _serve.Settings["Dashboard:ApiToken"] = "api-token";
        using var client = await _serve.CreateClientAsync(Remote);

        using var none = await client.GetAsync("/hangfire");
        using var wrong = await SendAsync(client, HttpMethod.Get, "/hangfire", new AuthenticationHeaderValue("Basic", Pair("ops", "nope")));
        using var bearer = await SendAsync(client, HttpMethod.Get, "/hangfire", new AuthenticationHeaderValue("Bearer", "api-token"));
        using var right = await SendAsync(client, HttpMethod.Get, "/hangfire/jobs/enqueued", new AuthenticationHeaderValue("Basic", Pair("ops", "correct horse")));

        none.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        none.Headers.WwwAuthenticate.ToString().ShouldStartWith("Basic realm=\"QwenBatch\"");
        wrong.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        bearer.StatusCode.ShouldBe(HttpStatusCode.Unauthorized, "the API token opens /api only; pages, Hangfire's included, take the basic-auth pair");
        right.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await right.Content.ReadAsStringAsync()).ShouldContain("Queues");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReadOnly_HidesHangfiresButtonsAndRefusesItsCommands(bool readOnly)
    {
        _serve.Settings["Dashboard:ReadOnly"] = readOnly ? "true" : "false";
        var (edit, job) = await ParkedEditJobAsync();
        using var client = await _serve.CreateClientAsync();

        var page = await client.GetStringAsync($"/hangfire/jobs/details/{job}");

        page.ShouldContain($"Edit {edit}");
        var buttons = new[] { $"data-ajax=\"/hangfire/jobs/actions/delete/{job}\"", $"data-ajax=\"/hangfire/jobs/actions/requeue/{job}\"" };
        if (!readOnly)
        {
            buttons.ShouldAllBe(b => page.Contains(b, StringComparison.Ordinal));
            return;
        }

        buttons.ShouldAllBe(b => !page.Contains(b, StringComparison.Ordinal));

        // A command sent anyway, with a valid token: Hangfire refuses it in read-only mode.
        using var delete = await SendAsync(client, HttpMethod.Post, $"/hangfire/jobs/actions/delete/{job}", null, Csrf(page));
        delete.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        JobState(job).ShouldBe(WaitingState.StateName);
        (await _serve.Store.GetEditAsync(edit, CancellationToken.None))!.State.ShouldBe(EditState.Pending);
    }

    [Fact]
    public async Task HangfireCommands_WithoutTheAntiforgeryToken_AreRefused_WithItDeleteCancelsTheEdit()
    {
        var (edit, job) = await ParkedEditJobAsync();
        using var client = await _serve.CreateClientAsync();
        var page = await client.GetStringAsync($"/hangfire/jobs/details/{job}");
        var (header, token) = Csrf(page);

        using var missing = await client.PostAsync($"/hangfire/jobs/actions/delete/{job}", new FormUrlEncodedContent([]));
        using var batch = await client.PostAsync("/hangfire/jobs/enqueued/delete", new FormUrlEncodedContent([new("jobs[]", job)]));
        using var forged = await SendAsync(client, HttpMethod.Post, $"/hangfire/jobs/actions/delete/{job}", null, (header, "not-a-token"));

        missing.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        batch.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        forged.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        JobState(job).ShouldBe(WaitingState.StateName);
        (await _serve.Store.GetEditAsync(edit, CancellationToken.None))!.State.ShouldBe(EditState.Pending);

        // The page's own token, as Hangfire's script sends it: the Delete button's command, through QwenBatch's filters.
        using var delete = await SendAsync(client, HttpMethod.Post, $"/hangfire/jobs/actions/delete/{job}", null, (header, token));

        delete.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        JobState(job).ShouldBe(DeletedState.StateName);
        var cancelled = (await _serve.Store.GetEditAsync(edit, CancellationToken.None))!;
        cancelled.State.ShouldBe(EditState.Cancelled);
        (await _serve.Store.GetHistoryAsync(edit, CancellationToken.None)).ShouldContain(h => h.To == EditState.Cancelled);
    }

    /// <summary>An edit of a new batch with its Hangfire job, made as the feeder makes it, then parked waiting (history of two states).</summary>
    private async Task<(long Edit, string Job)> ParkedEditJobAsync()
    {
        var import = await _serve.Store.ImportBatchAsync(
            new NewBatch("parked", "/m.csv", "simulator", Path.Combine(_serve.StorageRoot, "parked")),
            [new NewEdit("a", "h", "simulator", new EditSpec { Prompt = "p", Images = ["https://example.com/a.png"] })], CancellationToken.None);
        var edit = (await _serve.Store.GetEditsAsync(import.Batch.Id, CancellationToken.None)).Single();
        var jobs = _serve.Runtime.Services.GetRequiredService<EditJobClient>();
        await jobs.EnqueueAsync([edit], "fed by the test", CancellationToken.None);
        var job = (await _serve.Store.GetEditAsync(edit.Id, CancellationToken.None))!.HangfireJob.ShouldNotBeNull();
        jobs.Move(job, new WaitingState("in QwenBatch's backlog (the test holds it)", null), EnqueuedState.StateName).ShouldNotBeNull();
        return (edit.Id, job);
    }

    private string? JobState(string job)
    {
        using var connection = _serve.Runtime.Services.GetRequiredService<JobStorage>().GetConnection();
        return connection.GetStateData(job)?.Name;
    }

    /// <summary>The antiforgery header and token a Hangfire page carries for its script's POSTs.</summary>
    private static (string Header, string Token) Csrf(string page)
    {
        var header = CsrfHeader().Match(page);
        var token = CsrfToken().Match(page);
        header.Success.ShouldBeTrue("the page names the antiforgery header");
        token.Success.ShouldBeTrue("the page carries an antiforgery token");
        return (WebUtility.HtmlDecode(header.Groups[1].Value), WebUtility.HtmlDecode(token.Groups[1].Value));
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, string path, AuthenticationHeaderValue? auth, (string Header, string Token)? csrf = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = auth;
        if (csrf is { } c)
        {
            request.Headers.Add(c.Header, c.Token);
            request.Content = new FormUrlEncodedContent([]);
        }

        return await client.SendAsync(request);
    }

    private static string Pair(string user, string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}"));

    [GeneratedRegex("<meta name=\"csrf-header\" content=\"([^\"]*)\">")]
    private static partial Regex CsrfHeader();

    [GeneratedRegex("<meta name=\"csrf-token\" content=\"([^\"]*)\">")]
    private static partial Regex CsrfToken();
}

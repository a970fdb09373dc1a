using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using QwenBatch.Batches;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Tests.Api;

/// <summary>The REST API, the batch pages and the security gate, on serve's web app over real PostgreSQL.</summary>
public sealed partial class ApiEndpointTests : IAsyncLifetime
{
    private const string Remote = "203.0.113.7";
    private readonly ServeFactory _serve = new();

    public Task InitializeAsync()
    {
        _serve.Settings["Dashboard:InputRoot"] = TestManifests.Samples;
        return _serve.InitializeAsync();
    }

    public Task DisposeAsync() => _serve.DisposeAsync();

    [Fact]
    public async Task PostBatches_ValidManifest_Returns201AndImportsTheEdits()
    {
        using var client = await _serve.CreateClientAsync();

        using var response = await client.PostAsync("/api/batches?provider=simulator&name=api-upload&budget=5", TestManifests.Upload(TestManifests.Csv(3)));

        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        json.RootElement.GetProperty("jobs").GetInt32().ShouldBe(3);
        var id = json.RootElement.GetProperty("batch").GetInt64();
        var batch = await _serve.Store.GetBatchAsync(id, CancellationToken.None);
        batch!.Name.ShouldBe("api-upload");
        batch.BudgetUsd.ShouldBe(5m);
        (await _serve.Store.GetEditsAsync(id, CancellationToken.None)).Single(j => j.Key == "row-001").Spec.Images.ShouldBe([Path.Combine(TestManifests.Samples, "images", "mug.png")]);

        using var status = JsonDocument.Parse(await client.GetStringAsync($"/api/batches/{id}"));
        status.RootElement.GetProperty("done").GetBoolean().ShouldBeFalse();
        status.RootElement.GetProperty("counts").GetProperty("pending").GetInt32().ShouldBe(3);
    }

    [Fact]
    public async Task PostBatches_WithItsImages_ImportsEditsThatReadTheUploadedFiles()
    {
        // As the README's curl sends them: the sample manifest, and each image by its own file name.
        _serve.Settings["Dashboard:InputRoot"] = null;
        using var client = await _serve.CreateClientAsync();
        using var upload = new MultipartFormDataContent { { new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(TestManifests.Samples, "products.csv"))), "manifest", "products.csv" } };
        foreach (var image in Directory.GetFiles(Path.Combine(TestManifests.Samples, "images")))
        {
            upload.Add(new ByteArrayContent(await File.ReadAllBytesAsync(image)), "images", Path.GetFileName(image));
        }

        using var response = await client.PostAsync("/api/batches?provider=simulator&name=with-images", upload);

        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var edits = await _serve.Store.GetEditsAsync(json.RootElement.GetProperty("batch").GetInt64(), CancellationToken.None);
        edits.Count.ShouldBe(4);
        var backpack = edits.Single(e => e.Key == "backpack-green");
        backpack.Spec.Images.Select(Path.GetFileName).ShouldBe(["backpack.png", "mug.png"]);
        backpack.Spec.Images.ShouldAllBe(i => i.StartsWith(Path.Combine(_serve.StorageRoot, ".uploads"), StringComparison.Ordinal) && File.Exists(i));
        using var thumbnail = await client.GetAsync($"/hangfire/edits/{backpack.Id}/input/1");
        thumbnail.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await thumbnail.Content.ReadAsByteArrayAsync()).ShouldBe(await File.ReadAllBytesAsync(Path.Combine(TestManifests.Samples, "images", "mug.png")));
    }

    [Fact]
    public async Task PostBatches_AnImageMissingFromTheUpload_IsRefusedNamingItsLineAndFile()
    {
        _serve.Settings["Dashboard:InputRoot"] = null;
        using var client = await _serve.CreateClientAsync();
        using var upload = TestManifests.Upload(TestManifests.Csv(2, "images/sneaker.png"));
        upload.Add(new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(TestManifests.Samples, "images", "mug.png"))), "images", "mug.png");

        using var response = await client.PostAsync("/api/batches?name=missing-image", upload);

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = json.RootElement.GetProperty("errors")[0];
        error.GetProperty("line").GetInt32().ShouldBe(2);
        error.GetProperty("message").GetString().ShouldNotBeNull().ShouldContain("'images/sneaker.png' does not exist");
        (await _serve.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
        Directory.GetFileSystemEntries(Path.Combine(_serve.StorageRoot, ".uploads")).ShouldBeEmpty("a refused upload leaves nothing behind");
    }

    [Fact]
    public async Task PostBatches_AnImageNameLeavingItsFolder_IsRefused()
    {
        using var client = await _serve.CreateClientAsync();
        using var upload = TestManifests.Upload(TestManifests.Csv(1));
        upload.Add(new ByteArrayContent([1, 2, 3]), "images", "../../escape.png");

        using var response = await client.PostAsync("/api/batches?name=escape", upload);

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).ShouldContain("not a usable relative path");
        File.Exists(Path.Combine(_serve.StorageRoot, "escape.png")).ShouldBeFalse();
        (await _serve.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task PostBatches_ForAProviderThisServerHasNotConfigured_Is400SayingHowToConfigureIt()
    {
        var serve = new ServeFactory(simulatorConfigured: false);
        await serve.InitializeAsync();
        try
        {
            using var client = await serve.CreateClientAsync();

            using var simulator = await client.PostAsync("/api/batches?provider=simulator", TestManifests.Upload(TestManifests.Csv(1, "https://example.com/a.png")));
            using var unnamed = await client.PostAsync("/api/batches", TestManifests.Upload(TestManifests.Csv(1, "https://example.com/a.png")));

            simulator.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
            (await simulator.Content.ReadAsStringAsync()).ShouldContain("Provider 'simulator' is not configured on this server");
            (await simulator.Content.ReadAsStringAsync()).ShouldContain("Providers__Simulator__BaseUrl");
            unnamed.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
            (await unnamed.Content.ReadAsStringAsync()).ShouldContain("Name the batch's provider with ?provider=");
            (await serve.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
        }
        finally
        {
            await serve.DisposeAsync();
        }
    }

    [Fact]
    public async Task PostBatches_InvalidManifest_Returns400WithValidateJsonAndImportsNothing()
    {
        using var client = await _serve.CreateClientAsync();

        using var response = await client.PostAsync("/api/batches", TestManifests.Upload("id,prompt,images\nrow-1,,images/mug.png\n"));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        json.RootElement.GetProperty("valid").GetBoolean().ShouldBeFalse();
        var error = json.RootElement.GetProperty("errors")[0];
        error.GetProperty("line").GetInt32().ShouldBe(2);
        error.GetProperty("field").GetString().ShouldBe("prompt");
        (await _serve.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task PostBatches_ImageOutsideTheInputRoot_IsRefusedWithoutReadingIt()
    {
        using var client = await _serve.CreateClientAsync();

        using var response = await client.PostAsync("/api/batches", TestManifests.Upload(TestManifests.Csv(1, "../../../../etc/passwd")));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var body = await response.Content.ReadAsStringAsync();
        body.ShouldContain("outside the input root");
        body.ShouldNotContain("does not exist");
        (await _serve.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Requests_FromARemoteAddressWithoutCredentials_AreRefused()
    {
        using var client = await _serve.CreateClientAsync(Remote);

        using var page = await client.GetAsync("/hangfire/batches");
        using var old = await client.GetAsync("/dashboard");
        using var api = await client.GetAsync("/api/batches");
        using var metrics = await client.GetAsync("/metrics");
        using var upload = await client.PostAsync("/api/batches", TestManifests.Upload(TestManifests.Csv(1)));

        page.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        old.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        api.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        metrics.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        upload.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await _serve.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Metrics_FromARemoteAddress_NeedTheTokenOrThePagesCredentials()
    {
        _serve.Settings["Dashboard:ApiToken"] = "s3cret-token";
        _serve.Settings["Dashboard:User"] = "ops";
        _serve.Settings["Dashboard:Password"] = "correct horse";
        using var client = await _serve.CreateClientAsync(Remote);

        using var none = await client.GetAsync("/metrics");
        using var token = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { { "Authorization", "Bearer s3cret-token" } } };
        using var basic = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { Authorization = Basic("ops", "correct horse") } };

        none.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await none.Content.ReadAsStringAsync()).ShouldNotContain("qwenbatch_");
        (await client.SendAsync(token)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await client.SendAsync(basic)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Api_FromARemoteAddressWithTheToken_IsAnswered()
    {
        _serve.Settings["Dashboard:ApiToken"] = "s3cret-token";
        using var client = await _serve.CreateClientAsync(Remote);

        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/batches") { Headers = { { "Authorization", "Bearer nope" } } };
        using var right = new HttpRequestMessage(HttpMethod.Get, "/api/batches") { Headers = { { "Authorization", "Bearer s3cret-token" } } };

        (await client.SendAsync(wrong)).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await client.SendAsync(right)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Pages_FromARemoteAddressWithBasicAuth_AreAnsweredAndWithoutItAskForIt()
    {
        _serve.Settings["Dashboard:User"] = "ops";
        _serve.Settings["Dashboard:Password"] = "correct horse";
        using var client = await _serve.CreateClientAsync(Remote);

        using var none = await client.GetAsync("/hangfire/batches");
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/hangfire/batches") { Headers = { Authorization = Basic("ops", "nope") } };
        using var right = new HttpRequestMessage(HttpMethod.Get, "/hangfire/batches") { Headers = { Authorization = Basic("ops", "correct horse") } };

        none.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        none.Headers.WwwAuthenticate.ToString().ShouldStartWith("Basic");
        (await client.SendAsync(wrong)).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await client.SendAsync(right)).StatusCode.ShouldBe(HttpStatusCode.OK);

        // The batches page's upload form posts to the API with the same credentials.
        using var api = new HttpRequestMessage(HttpMethod.Get, "/api/batches") { Headers = { Authorization = Basic("ops", "correct horse") } };
        (await client.SendAsync(api)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task CancelButton_WithoutThePagesAntiforgeryToken_ChangesNothing()
    {
        var batch = await ImportAsync("forged");
        using var client = await _serve.CreateClientAsync();
        await client.GetStringAsync($"/hangfire/batches/{batch.Id}");

        using var missing = await client.PostAsync($"/hangfire/batches/{batch.Id}/cancel", null);
        using var forged = new HttpRequestMessage(HttpMethod.Post, $"/hangfire/batches/{batch.Id}/cancel") { Headers = { { "RequestVerificationToken", "not-a-token" } } };
        using var forgedResponse = await client.SendAsync(forged);

        missing.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        forgedResponse.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await _serve.Store.GetProgressAsync(batch.Id, CancellationToken.None)).Count(EditState.Pending).ShouldBe(1);
        (await _serve.Store.GetBatchAsync(batch.Id, CancellationToken.None))!.CancelRequestedAt.ShouldBeNull();
    }

    [Fact]
    public async Task CancelButton_WithTheBatchPagesToken_CancelsTheBatch()
    {
        var batch = await ImportAsync("cancelled");
        using var client = await _serve.CreateClientAsync();
        var page = await client.GetStringAsync($"/hangfire/batches/{batch.Id}");
        page.ShouldContain($"data-ajax=\"/hangfire/batches/{batch.Id}/cancel\"");
        var header = MetaPattern().Matches(page).Single(m => m.Groups["name"].Value == "csrf-header").Groups["content"].Value;
        var token = MetaPattern().Matches(page).Single(m => m.Groups["name"].Value == "csrf-token").Groups["content"].Value;

        // As Hangfire's script posts it: the page's token in the header its layout names.
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/hangfire/batches/{batch.Id}/cancel") { Headers = { { header, WebUtility.HtmlDecode(token) } } };
        using var response = await client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await _serve.Store.GetProgressAsync(batch.Id, CancellationToken.None)).Count(EditState.Cancelled).ShouldBe(1);
    }

    [Fact]
    public async Task PostApiCancel_FromAnotherSite_IsRefusedAndChangesNothing()
    {
        var batch = await ImportAsync("cross-site");
        using var client = await _serve.CreateClientAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/batches/{batch.Id}/cancel")
        {
            Headers = { { "Origin", "https://evil.example" }, { "Sec-Fetch-Site", "cross-site" } },
        };

        using var response = await client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await _serve.Store.GetProgressAsync(batch.Id, CancellationToken.None)).Count(EditState.Pending).ShouldBe(1);
    }

    [Fact]
    public async Task Healthz_MigratedDatabase_Returns200()
    {
        using var client = await _serve.CreateClientAsync();

        using var response = await client.GetAsync("/healthz");

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).ShouldContain($"\"schema\":{_serve.Store.LatestSchemaVersion}");
    }

    [Fact]
    public async Task Pages_AfterAnUpload_RenderWithoutTheDatabasePassword()
    {
        using var client = await _serve.CreateClientAsync();
        using var created = await client.PostAsync("/api/batches?name=pages", TestManifests.Upload(TestManifests.Csv(2)));
        using var json = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        var id = json.RootElement.GetProperty("batch").GetInt64();
        var edit = (await _serve.Store.GetEditsAsync(id, CancellationToken.None))[0];

        foreach (var path in new[] { "/hangfire/batches", $"/hangfire/batches/{id}", $"/hangfire/batches/{id}?state=pending", "/hangfire" })
        {
            var html = await client.GetStringAsync(path);
            html.ShouldContain("QwenBatch");
            html.ShouldContain("href=\"/hangfire/batches\"", Case.Sensitive, "the Batches entry of Hangfire's navigation");
            html.ShouldNotContain("Password=", Case.Insensitive);
        }

        (await client.GetStringAsync("/hangfire/batches")).ShouldContain($"href=\"/hangfire/batches/{id}\"");
        (await client.GetStringAsync($"/hangfire/batches/{id}")).ShouldContain("row-002");
        using var input = await client.GetAsync($"/hangfire/edits/{edit.Id}/input/0");
        input.StatusCode.ShouldBe(HttpStatusCode.OK);
        input.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
        (await client.GetAsync($"/hangfire/edits/{edit.Id}/output/0")).StatusCode.ShouldBe(HttpStatusCode.NotFound, "no output yet");
    }

    [Theory]
    [InlineData("/dashboard", "/hangfire/batches")]
    [InlineData("/dashboard/batches", "/hangfire/batches")]
    [InlineData("/dashboard/batches/{batch}", "/hangfire/batches/{batch}")]
    [InlineData("/dashboard/job/{edit}", "/hangfire/batches/{batch}")]
    [InlineData("/dashboard/job/{edit}/input/0", "/hangfire/edits/{edit}/input/0")]
    public async Task OldAddresses_RedirectIntoHangfiresDashboard(string old, string expected)
    {
        var batch = await ImportAsync("moved");
        var edit = (await _serve.Store.GetEditsAsync(batch.Id, CancellationToken.None)).Single();
        using var client = await _serve.CreateClientAsync();
        string Fill(string path) => path.Replace("{batch}", $"{batch.Id}", StringComparison.Ordinal).Replace("{edit}", $"{edit.Id}", StringComparison.Ordinal);

        using var response = await client.GetAsync(Fill(old));

        ((int)response.StatusCode).ShouldBeOneOf(301, 302);
        response.Headers.Location!.ToString().ShouldBe(Fill(expected));
    }

    [Fact]
    public async Task ErrorsCsv_OfABatch_IsServedBesideTheReports()
    {
        var batch = await ImportAsync("errors");
        using var client = await _serve.CreateClientAsync();

        using var response = await client.GetAsync($"/api/batches/{batch.Id}/errors.csv");

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/csv");
        (await response.Content.ReadAsStringAsync()).ShouldStartWith("id,");
    }

    private async Task<BatchRecord> ImportAsync(string name) =>
        (await _serve.Store.ImportBatchAsync(
            new NewBatch(name, "/m.csv", "simulator", Path.Combine(_serve.StorageRoot, name)),
            [new NewEdit("a", "h", "simulator", new EditSpec { Prompt = "p", Images = ["https://example.com/a.png"] })], CancellationToken.None)).Batch;

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    [GeneratedRegex("<meta name=\"(?<name>csrf-[a-z]+)\" content=\"(?<content>[^\"]+)\">")]
    private static partial Regex MetaPattern();
}

using System.Net;
using System.Text.Json;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Tests.Api;

/// <summary>The REST API and the security gate on TestServer over real PostgreSQL.</summary>
public sealed class ApiEndpointTests : IAsyncLifetime
{
    private readonly DashboardFactory _factory = new();

    public Task InitializeAsync()
    {
        _factory.Settings["Dashboard:InputRoot"] = TestManifests.Samples;
        return _factory.InitializeAsync();
    }

    public Task DisposeAsync() => ((IAsyncLifetime)_factory).DisposeAsync();

    [Fact]
    public async Task PostBatches_ValidManifest_Returns201AndImportsTheJobs()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync("/api/batches?provider=simulator&name=api-upload&budget=5", TestManifests.Upload(TestManifests.Csv(3)));

        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        json.RootElement.GetProperty("jobs").GetInt32().ShouldBe(3);
        var id = json.RootElement.GetProperty("batch").GetInt64();
        var batch = await _factory.Store.GetBatchAsync(id, CancellationToken.None);
        batch!.Name.ShouldBe("api-upload");
        batch.BudgetUsd.ShouldBe(5m);
        (await _factory.Store.GetJobsAsync(id, CancellationToken.None)).Single(j => j.Key == "row-001").Spec.Images.ShouldBe([Path.Combine(TestManifests.Samples, "images", "mug.png")]);

        using var status = JsonDocument.Parse(await client.GetStringAsync($"/api/batches/{id}"));
        status.RootElement.GetProperty("done").GetBoolean().ShouldBeFalse();
        status.RootElement.GetProperty("counts").GetProperty("pending").GetInt32().ShouldBe(3);
    }

    [Fact]
    public async Task PostBatches_InvalidManifest_Returns400WithValidateJsonAndEnqueuesNothing()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync("/api/batches", TestManifests.Upload("id,prompt,images\nrow-1,,images/mug.png\n"));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        json.RootElement.GetProperty("valid").GetBoolean().ShouldBeFalse();
        var error = json.RootElement.GetProperty("errors")[0];
        error.GetProperty("line").GetInt32().ShouldBe(2);
        error.GetProperty("field").GetString().ShouldBe("prompt");
        (await _factory.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task PostBatches_ImageOutsideTheInputRoot_IsRefusedWithoutReadingIt()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync("/api/batches", TestManifests.Upload(TestManifests.Csv(1, "../../../../etc/passwd")));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var body = await response.Content.ReadAsStringAsync();
        body.ShouldContain("outside the input root");
        body.ShouldNotContain("does not exist");
        (await _factory.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Requests_FromARemoteAddressWithoutCredentials_AreRefused()
    {
        using var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Add(DashboardFactory.RemoteHeader, "203.0.113.7");

        using var page = await client.GetAsync("/dashboard");
        using var api = await client.GetAsync("/api/batches");
        using var upload = await client.PostAsync("/api/batches", TestManifests.Upload(TestManifests.Csv(1)));

        page.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        api.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        upload.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await _factory.Store.GetBatchesAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Api_FromARemoteAddressWithTheToken_IsAnswered()
    {
        _factory.Settings["Dashboard:ApiToken"] = "s3cret-token";
        using var client = _factory.CreateClient();
        client.DefaultRequestHeaders.Add(DashboardFactory.RemoteHeader, "203.0.113.7");

        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/batches") { Headers = { { "Authorization", "Bearer nope" } } };
        using var right = new HttpRequestMessage(HttpMethod.Get, "/api/batches") { Headers = { { "Authorization", "Bearer s3cret-token" } } };

        (await client.SendAsync(wrong)).StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await client.SendAsync(right)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task PostCancelForm_WithoutTheAntiforgeryToken_ChangesNothing()
    {
        var import = await _factory.Store.ImportBatchAsync(
            new Batches.NewBatch("forged", "/m.csv", "simulator", Path.Combine(_factory.StorageRoot, "forged")),
            new[] { new Batches.NewEdit("a", "h", "simulator", new EditSpec { Prompt = "p", Images = ["https://example.com/a.png"] }) }, CancellationToken.None);
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync($"/dashboard/batches/{import.Batch.Id}/cancel", new FormUrlEncodedContent([]));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await _factory.Store.GetProgressAsync(import.Batch.Id, CancellationToken.None)).Count(EditState.Pending).ShouldBe(1);
        (await _factory.Store.GetBatchAsync(import.Batch.Id, CancellationToken.None))!.CancelRequestedAt.ShouldBeNull();
    }

    [Fact]
    public async Task PostApiCancel_FromAnotherSite_IsRefusedAndChangesNothing()
    {
        var import = await _factory.Store.ImportBatchAsync(
            new Batches.NewBatch("cross-site", "/m.csv", "simulator", Path.Combine(_factory.StorageRoot, "cross-site")),
            new[] { new Batches.NewEdit("a", "h", "simulator", new EditSpec { Prompt = "p", Images = ["https://example.com/a.png"] }) }, CancellationToken.None);
        using var client = _factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/batches/{import.Batch.Id}/cancel")
        {
            Headers = { { "Origin", "https://evil.example" }, { "Sec-Fetch-Site", "cross-site" } },
        };

        using var response = await client.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await _factory.Store.GetProgressAsync(import.Batch.Id, CancellationToken.None)).Count(EditState.Pending).ShouldBe(1);
    }

    [Fact]
    public async Task Healthz_MigratedDatabase_Returns200()
    {
        using var client = _factory.CreateClient();

        using var response = await client.GetAsync("/healthz");

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).ShouldContain($"\"schema\":{_factory.Store.LatestSchemaVersion}");
    }

    [Fact]
    public async Task Pages_AfterAnUpload_RenderWithoutTheDatabasePassword()
    {
        using var client = _factory.CreateClient();
        using var created = await client.PostAsync("/api/batches?name=pages", TestManifests.Upload(TestManifests.Csv(2)));
        using var json = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        var id = json.RootElement.GetProperty("batch").GetInt64();
        var job = (await _factory.Store.GetJobsAsync(id, CancellationToken.None))[0];

        foreach (var path in new[] { "/dashboard", "/dashboard/batches", $"/dashboard/batches/{id}", "/dashboard/jobs/pending", $"/dashboard/job/{job.Id}", "/dashboard/servers" })
        {
            var html = await client.GetStringAsync(path);
            html.ShouldContain("QwenBatch");
            html.ShouldNotContain("Password=", Case.Insensitive);
        }

        (await client.GetStringAsync($"/dashboard/jobs/pending?batch={id}")).ShouldContain("row-002");
        (await client.GetAsync($"/dashboard/job/{job.Id}/input/0")).Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
    }
}

using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Continuations;
using QwenBatch.Core.Tests.Support;
using QwenBatch.Storage;
using QwenBatch.Testing.Http;

namespace QwenBatch.Core.Tests.Continuations;

public sealed class ContinuationRunnerTests : IAsyncLifetime
{
    private const string Secret = "whsec-test-5d1c";
    private readonly SqliteStoreScope _engine = new();
    private readonly RecordingHandler _hook = new();
    private readonly string _manifest = Path.Combine(Path.GetTempPath(), $"qwenbatch-then-{Guid.NewGuid():N}.csv");

    public async Task InitializeAsync()
    {
        await _engine.Store.MigrateAsync(CancellationToken.None);
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,White background,https://example.com/mug.png\n");
    }

    public async Task DisposeAsync()
    {
        File.Delete(_manifest);
        _hook.Dispose();
        await _engine.DisposeAsync();
    }

    [Fact]
    public async Task Fire_SettledBatchWithWebhookFailingTwice_PostsSignedSummaryWithRetriesAndFiresOnce()
    {
        _hook.Failures = 2;
        var batch = await _engine.ImportAsync(3, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, "https://hooks.example/done"), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        var runner = Runner();

        var first = await FireClaimedAsync(runner);
        var second = await FireClaimedAsync(runner);

        first.ShouldBe(["webhook 200"]);
        second.ShouldBeEmpty();
        _hook.Bodies.Count.ShouldBe(3);
        var body = _hook.Bodies[^1];
        _hook.Signatures[^1].ShouldBe(ContinuationRunner.Sign(Secret, body));
        var json = System.Text.Json.JsonDocument.Parse(body).RootElement;
        json.GetProperty("name").GetString().ShouldBe("first");
        json.GetProperty("counts").GetProperty("cancelled").GetInt32().ShouldBe(3);
    }

    [Fact]
    public async Task Fire_SettledBatchWithNextManifest_ImportsThenBatchOnce()
    {
        var batch = await _engine.ImportAsync(1, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(_manifest, null), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);

        var results = await FireClaimedAsync(Runner());

        results.ShouldBe(["batch first-then"]);
        var then = (await _engine.Store.FindBatchAsync("first-then", CancellationToken.None)).ShouldNotBeNull();
        (await _engine.Store.GetEditsAsync(then.Id, CancellationToken.None)).Count.ShouldBe(1);
        (await _engine.Store.GetContinuationAsync(batch.Id, CancellationToken.None))!.Value.Result.ShouldBe("batch first-then");
    }

    [Fact]
    public async Task Fire_TwoWorkersOnOneSettledBatch_FireTheContinuationOnce()
    {
        var batch = await _engine.ImportAsync(2, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(_manifest, "https://hooks.example/done"), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        var workers = new[] { Runner(_engine.NewStore()), Runner(_engine.NewStore()) };

        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(() => FireClaimedAsync(workers[i % 2]))));

        results.SelectMany(r => r).ShouldHaveSingleItem().ShouldBe("batch first-then; webhook 200");
        _hook.Bodies.Count.ShouldBe(1);
        (await _engine.Store.GetBatchesAsync(CancellationToken.None)).Count(b => b.Name == "first-then").ShouldBe(1);
    }

    [Fact]
    public async Task ClaimSettledAsync_BatchEndedHere_ClaimsOnlyThatBatchOnceAndNotWhileUnsettled()
    {
        var running = await _engine.ImportAsync(1, "running");
        var ended = await _engine.ImportAsync(1, "ended");
        foreach (var batch in new[] { running, ended })
        {
            await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, "https://hooks.example/done"), CancellationToken.None);
        }

        await _engine.Store.RequestCancelAsync(ended.Id, CancellationToken.None);
        var runner = Runner();

        var unsettled = await runner.ClaimSettledAsync(running.Id, CancellationToken.None);
        var claimed = await runner.ClaimSettledAsync(ended.Id, CancellationToken.None);
        var fired = await runner.FireAsync(ended.Id, CancellationToken.None);
        var again = await runner.ClaimSettledAsync(ended.Id, CancellationToken.None);
        var rerun = await runner.FireAsync(ended.Id, CancellationToken.None);

        unsettled.ShouldBeEmpty();
        claimed.ShouldHaveSingleItem().BatchId.ShouldBe(ended.Id);
        fired.ShouldBe("webhook 200");
        again.ShouldBeEmpty();
        rerun.ShouldBe("webhook 200", "a second run of the continuation's job finds the result recorded");
        _hook.Bodies.Count.ShouldBe(1);
    }

    [Fact]
    public async Task Fire_NextManifestInvalid_MakesFailedThenBatchWithTheErrors()
    {
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,,\n");
        var batch = await _engine.ImportAsync(1, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(_manifest, null), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);

        var result = (await FireClaimedAsync(Runner())).ShouldHaveSingleItem();

        result.ShouldStartWith("manifest failed (batch first-then)");
        var then = (await _engine.Store.FindBatchAsync("first-then", CancellationToken.None)).ShouldNotBeNull();
        then.Failure!.ShouldContain("prompt");
        (await _engine.Store.GetEditsAsync(then.Id, CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Fire_LoopbackWebhookAnswering500First_RetriesAndEveryAttemptIsSignedWithTheSecret()
    {
        using var listener = new LoopbackHook(HttpStatusCode.InternalServerError, HttpStatusCode.OK);
        var batch = await _engine.ImportAsync(2, "nightly");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, listener.Url), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        using var http = new HttpClient();
        var runner = new ContinuationRunner(_engine.Store,
            new ContinuationOptions { WebhookSecret = Secret, WebhookAttempts = 3, WebhookRetryDelay = TimeSpan.Zero }, http, _engine.Time, NullLogger<ContinuationRunner>.Instance);

        var results = await FireClaimedAsync(runner);

        results.ShouldBe(["webhook 200"]);
        listener.Requests.Count.ShouldBe(2);
        foreach (var request in listener.Requests)
        {
            request.Method.ShouldBe("POST");
            request.ContentType.ShouldStartWith("application/json");
            request.Headers[ContinuationRunner.SignatureHeader].ShouldBe("sha256=" + Convert.ToHexStringLower(System.Security.Cryptography.HMACSHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Secret), request.Body)));
            request.Headers[ContinuationRunner.DeliveryHeader].ShouldBe($"batch-{batch.Id}");
        }

        listener.Requests[1].Body.ShouldBe(listener.Requests[0].Body);
        var json = System.Text.Json.JsonDocument.Parse(listener.Requests[1].Body).RootElement;
        json.GetProperty("name").GetString().ShouldBe("nightly");
        json.GetProperty("jobs").GetInt32().ShouldBe(2);
        json.GetProperty("counts").GetProperty("cancelled").GetInt32().ShouldBe(2);
    }

    [Fact]
    public async Task Fire_LoopbackWebhookFailingEveryAttempt_RecordsTheFailureAndDoesNotFireAgain()
    {
        using var listener = new LoopbackHook(HttpStatusCode.InternalServerError, HttpStatusCode.InternalServerError, HttpStatusCode.InternalServerError);
        var batch = await _engine.ImportAsync(1, "nightly");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, listener.Url), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        using var http = new HttpClient();
        var runner = new ContinuationRunner(_engine.Store,
            new ContinuationOptions { WebhookSecret = Secret, WebhookAttempts = 3, WebhookRetryDelay = TimeSpan.Zero }, http, _engine.Time, NullLogger<ContinuationRunner>.Instance);

        var first = await FireClaimedAsync(runner);
        _engine.Time.Advance(TimeSpan.FromHours(1));
        var later = await FireClaimedAsync(runner);

        first.ShouldBe(["webhook failed: HTTP 500 after 3 attempt(s)"]);
        later.ShouldBeEmpty();
        listener.Requests.Count.ShouldBe(3);
        (await _engine.Store.GetContinuationAsync(batch.Id, CancellationToken.None))!.Value.Result.ShouldBe("webhook failed: HTTP 500 after 3 attempt(s)");
    }

    private ContinuationRunner Runner(IStore? store = null) => new(store ?? _engine.Store,
        new ContinuationOptions { WebhookSecret = Secret, WebhookAttempts = 3, WebhookRetryDelay = TimeSpan.Zero },
        new HttpClient(_hook), _engine.Time, NullLogger<ContinuationRunner>.Instance);

    /// <summary>What a worker does: claims the settled batches' continuations, and fires each as its job would.</summary>
    private static async Task<IReadOnlyList<string>> FireClaimedAsync(ContinuationRunner runner)
    {
        var results = new List<string>();
        foreach (var claimed in await runner.ClaimSettledAsync(null, CancellationToken.None))
        {
            results.Add((await runner.FireAsync(claimed.BatchId, CancellationToken.None))!);
        }

        return results;
    }

    private sealed class RecordingHandler : HttpMessageHandler
    {
        public int Failures { get; set; }

        public List<byte[]> Bodies { get; } = [];

        public List<string?> Signatures { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = await request.Content!.ReadAsByteArrayAsync(cancellationToken);
            lock (Bodies)
            {
                Bodies.Add(body);
                Signatures.Add(request.Headers.TryGetValues(ContinuationRunner.SignatureHeader, out var values) ? values.Single() : null);
                return new HttpResponseMessage(Bodies.Count <= Failures ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.OK);
            }
        }
    }
}

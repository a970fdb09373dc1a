using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Continuations;
using QwenBatch.Core.Tests.Server;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Testing.Http;

namespace QwenBatch.Core.Tests.Continuations;

public sealed class ContinuationRunnerTests : IAsyncLifetime
{
    private const string Secret = "whsec-test-5d1c";
    private readonly EngineHarness _engine = new();
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
    public async Task TickAsync_SettledBatchWithWebhookFailingTwice_PostsSignedSummaryWithRetriesAndFiresOnce()
    {
        _hook.Failures = 2;
        var batch = await _engine.ImportAsync(3, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, "https://hooks.example/done"), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        var runner = Runner();

        var first = await runner.TickAsync(CancellationToken.None);
        var second = await runner.TickAsync(CancellationToken.None);

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
    public async Task TickAsync_SettledBatchWithNextManifest_ImportsThenBatchOnce()
    {
        var batch = await _engine.ImportAsync(1, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(_manifest, null), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);

        var results = await Runner().TickAsync(CancellationToken.None);

        results.ShouldBe(["batch first-then"]);
        var then = (await _engine.Store.FindBatchAsync("first-then", CancellationToken.None)).ShouldNotBeNull();
        (await _engine.Store.GetJobsAsync(then.Id, CancellationToken.None)).Count.ShouldBe(1);
        (await _engine.Store.GetContinuationAsync(batch.Id, CancellationToken.None))!.Value.Result.ShouldBe("batch first-then");
    }

    [Fact]
    public async Task TickAsync_TwoWorkersOnOneSettledBatch_FireTheContinuationOnce()
    {
        var batch = await _engine.ImportAsync(2, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(_manifest, "https://hooks.example/done"), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        var workers = new[] { Runner(_engine.NewStore()), Runner(_engine.NewStore()) };

        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(() => workers[i % 2].TickAsync(CancellationToken.None))));

        results.SelectMany(r => r).ShouldHaveSingleItem().ShouldBe("batch first-then; webhook 200");
        _hook.Bodies.Count.ShouldBe(1);
        (await _engine.Store.GetBatchesAsync(CancellationToken.None)).Count(b => b.Name == "first-then").ShouldBe(1);
    }

    [Fact]
    public async Task FireSettledAsync_BatchEndedHere_FiresOnlyThatBatchOnceAndNotWhileUnsettled()
    {
        var running = await _engine.ImportAsync(1, "running");
        var ended = await _engine.ImportAsync(1, "ended");
        foreach (var batch in new[] { running, ended })
        {
            await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, "https://hooks.example/done"), CancellationToken.None);
        }

        await _engine.Store.RequestCancelAsync(ended.Id, CancellationToken.None);
        var runner = Runner();

        var unsettled = await runner.FireSettledAsync(running.Id, CancellationToken.None);
        var fired = await runner.FireSettledAsync(ended.Id, CancellationToken.None);
        var again = await runner.FireSettledAsync(ended.Id, CancellationToken.None);

        unsettled.ShouldBeNull();
        fired.ShouldBe("webhook 200");
        again.ShouldBeNull();
        _hook.Bodies.Count.ShouldBe(1);
    }

    [Fact]
    public async Task TickAsync_NextManifestInvalid_MakesFailedThenBatchWithTheErrors()
    {
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,,\n");
        var batch = await _engine.ImportAsync(1, "first");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(_manifest, null), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);

        var result = (await Runner().TickAsync(CancellationToken.None)).ShouldHaveSingleItem();

        result.ShouldStartWith("manifest failed (batch first-then)");
        var then = (await _engine.Store.FindBatchAsync("first-then", CancellationToken.None)).ShouldNotBeNull();
        then.Failure!.ShouldContain("prompt");
        (await _engine.Store.GetJobsAsync(then.Id, CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task TickAsync_LoopbackWebhookAnswering500First_RetriesAndEveryAttemptIsSignedWithTheSecret()
    {
        using var listener = new LoopbackHook(HttpStatusCode.InternalServerError, HttpStatusCode.OK);
        var batch = await _engine.ImportAsync(2, "nightly");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, listener.Url), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        using var http = new HttpClient();
        var runner = new ContinuationRunner(_engine.Store,
            new ContinuationOptions { WebhookSecret = Secret, WebhookAttempts = 3, WebhookRetryDelay = TimeSpan.Zero }, http, _engine.Time, NullLogger<ContinuationRunner>.Instance);

        var results = await runner.TickAsync(CancellationToken.None);

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
    public async Task TickAsync_LoopbackWebhookFailingEveryAttempt_RecordsTheFailureAndDoesNotFireAgain()
    {
        using var listener = new LoopbackHook(HttpStatusCode.InternalServerError, HttpStatusCode.InternalServerError, HttpStatusCode.InternalServerError);
        var batch = await _engine.ImportAsync(1, "nightly");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(null, listener.Url), CancellationToken.None);
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        using var http = new HttpClient();
        var runner = new ContinuationRunner(_engine.Store,
            new ContinuationOptions { WebhookSecret = Secret, WebhookAttempts = 3, WebhookRetryDelay = TimeSpan.Zero }, http, _engine.Time, NullLogger<ContinuationRunner>.Instance);

        var first = await runner.TickAsync(CancellationToken.None);
        _engine.Time.Advance(TimeSpan.FromHours(1));
        var later = await runner.TickAsync(CancellationToken.None);

        first.ShouldBe(["webhook failed: HTTP 500 after 3 attempt(s)"]);
        later.ShouldBeEmpty();
        listener.Requests.Count.ShouldBe(3);
        (await _engine.Store.GetContinuationAsync(batch.Id, CancellationToken.None))!.Value.Result.ShouldBe("webhook failed: HTTP 500 after 3 attempt(s)");
    }

    [Fact]
    public async Task WorkerFleet_TwoServersEndingABatchOnFakeClock_FireItsContinuationOnce()
    {
        var batch = await _engine.ImportAsync(6, "fleet");
        await _engine.Store.SetContinuationAsync(batch.Id, new Continuation(_manifest, "https://hooks.example/done"), CancellationToken.None);
        var options = new ContinuationOptions { WebhookSecret = Secret, PollInterval = TimeSpan.FromSeconds(1), WebhookRetryDelay = TimeSpan.Zero };
        var providers = new ProviderRegistry([new ProviderAccount(EngineHarness.Provider, _engine.Scripted, _engine.Account)]);
        using var stop = new CancellationTokenSource();
        var workers = new[] { _engine.NewStore(), _engine.NewStore() }.Select(store =>
        {
            // Each worker as 'worker' composes it: the engine with the continuation loop beside the dispatcher.
            var continuations = new ContinuationRunner(store, options, new HttpClient(_hook), _engine.Time, NullLogger<ContinuationRunner>.Instance);
            var server = JobEngine.Create(new EngineParts(store, providers, _engine.Options, _engine.Time, EngineHarness.Jitter, _engine.Latency,
                new OutputDownloader(new HttpClient()), NullLoggerFactory.Instance, [continuations]));
            return server.RunAsync(ServerScope.Everything, stop.Token);
        }).ToArray();

        await _engine.RunClockUntilAsync(async () => (await _engine.Store.GetContinuationAsync(batch.Id, CancellationToken.None))!.Value.Result is not null,
            TimeSpan.FromMilliseconds(250));

        // Both workers keep looking for a while: neither fires it again.
        for (var i = 0; i < 20; i++)
        {
            _engine.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(5);
        }

        await stop.CancelAsync();
        await Task.WhenAll(workers);

        (await _engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(j => j.State == QwenBatch.Edits.EditState.Succeeded);
        _hook.Bodies.Count.ShouldBe(1);
        (await _engine.Store.GetContinuationAsync(batch.Id, CancellationToken.None))!.Value.Result.ShouldBe("batch fleet-then; webhook 200");
        (await _engine.Store.GetBatchesAsync(CancellationToken.None)).Count(b => b.Name == "fleet-then").ShouldBe(1);
    }

    private ContinuationRunner Runner(QwenBatch.Storage.IJobStore? store = null) => new(store ?? _engine.Store,
        new ContinuationOptions { WebhookSecret = Secret, WebhookAttempts = 3, WebhookRetryDelay = TimeSpan.Zero },
        new HttpClient(_hook), _engine.Time, NullLogger<ContinuationRunner>.Instance);

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

using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Continuations;
using QwenBatch.Core.Tests.Server;

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

    private ContinuationRunner Runner() => new(_engine.Store,
        new ContinuationOptions { WebhookSecret = Secret, WebhookAttempts = 3, WebhookRetryDelay = TimeSpan.Zero },
        new HttpClient(_hook), _engine.Time, NullLogger<ContinuationRunner>.Instance);

    private sealed class RecordingHandler : HttpMessageHandler
    {
        public int Failures { get; set; }

        public List<byte[]> Bodies { get; } = [];

        public List<string?> Signatures { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Bodies.Add(await request.Content!.ReadAsByteArrayAsync(cancellationToken));
            Signatures.Add(request.Headers.TryGetValues(ContinuationRunner.SignatureHeader, out var values) ? values.Single() : null);
            return new HttpResponseMessage(Bodies.Count <= Failures ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.OK);
        }
    }
}

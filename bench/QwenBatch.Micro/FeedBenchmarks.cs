using BenchmarkDotNet.Attributes;
using QwenBatch.Feeding;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.Micro;

/// <summary>
/// One feeder round of up to 16 due edits (two Hangfire workers' window) on PostgreSQL: one transaction through
/// <see cref="IEditStore.FeedAsync"/> that takes the edits with <c>FOR UPDATE SKIP LOCKED</c>, locks their batch and
/// provider rows, lets the feed policy reserve their cost, and writes them queued with history and counters — against a
/// <c>SELECT 1</c> round trip on the same server. The edits go back to pending before every invocation, outside the
/// measurement (with an [IterationSetup], BenchmarkDotNet runs one invocation per iteration).
/// </summary>
public class FeedBenchmarks
{
    private static readonly FeedPolicy Policy = new(new ProviderRegistry([new ProviderAccount("odirouter", new NoProvider(), new ProviderOptions { PricePerImage = 0.02m })]));
    private MicroDatabase _db = null!;

    [GlobalSetup]
    public void Setup() => _db = MicroDatabase.CreateAsync(jobs: 10_000).GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => _db.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [IterationSetup]
    public void BackToPending() => _db.ExecuteAsync("UPDATE jobs SET state = 'pending', reserved_usd = 0 WHERE state = 'queued'").GetAwaiter().GetResult();

    [Benchmark(Baseline = true, Description = "SELECT 1 round trip")]
    public async Task<object?> SelectOne()
    {
        await using var command = _db.Raw.CreateCommand("SELECT 1");
        return await command.ExecuteScalarAsync();
    }

    [Benchmark(Description = "FeedAsync(16), PostgreSQL")]
    public async Task<int> Feed16()
    {
        var edits = await _db.Store.FeedAsync(new FeedRequest("micro", 16), Policy, CancellationToken.None);
        return edits.Count == 16 ? edits.Count : throw new InvalidOperationException($"fed {edits.Count} edits, expected 16");
    }

    /// <summary>The feed policy reads the account's options only.</summary>
    private sealed class NoProvider : IImageEditProvider
    {
        public Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct) => throw new NotSupportedException();

        public Task<PollResult> PollAsync(string requestId, CancellationToken ct) => throw new NotSupportedException();

        public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct) => throw new NotSupportedException();
    }
}

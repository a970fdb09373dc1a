using BenchmarkDotNet.Attributes;
using QwenBatch.Storage;

namespace QwenBatch.Micro;

/// <summary>
/// One claim of up to 16 due jobs (the engine's default concurrency) on PostgreSQL: one round trip of
/// <c>UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)</c> through <see cref="IJobStore.ClaimAsync"/>, against a
/// <c>SELECT 1</c> round trip on the same server. Leases are cleared before every invocation, outside the measurement
/// (with an [IterationSetup], BenchmarkDotNet runs one invocation per iteration).
/// </summary>
public class ClaimBenchmarks
{
    private MicroDatabase _db = null!;

    [GlobalSetup]
    public void Setup() => _db = MicroDatabase.CreateAsync(jobs: 10_000).GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => _db.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [IterationSetup]
    public void ClearLeases() => _db.ExecuteAsync("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner IS NOT NULL").GetAwaiter().GetResult();

    [Benchmark(Baseline = true, Description = "SELECT 1 round trip")]
    public async Task<object?> SelectOne()
    {
        await using var command = _db.Raw.CreateCommand("SELECT 1");
        return await command.ExecuteScalarAsync();
    }

    [Benchmark(Description = "ClaimAsync(16), PostgreSQL")]
    public async Task<int> Claim16()
    {
        var jobs = await _db.Store.ClaimAsync(new ClaimRequest("micro", 16, TimeSpan.FromMinutes(1)), CancellationToken.None);
        return jobs.Count == 16 ? jobs.Count : throw new InvalidOperationException($"claimed {jobs.Count} jobs, expected 16");
    }
}

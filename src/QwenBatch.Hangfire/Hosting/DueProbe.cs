using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// The idle process's one look at the store for work that other processes made (a new batch, a poll due after another
/// server stopped): one small statement, shared by the feeder and the poller, at most once per half fallback interval.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A SemaphoreSlim holds nothing to release unless its AvailableWaitHandle is asked for, which this one never is.")]
public sealed class DueProbe(IEditStore edits, EngineScope scope, TimeProvider time)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (NextDue Due, DateTimeOffset At)? _last;

    /// <summary>The next look asks the store, whatever it last answered (work was just taken, or just added).</summary>
    public void Invalidate() => _last = null;

    public async Task<NextDue> GetAsync(TimeSpan maxAge, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            var now = time.GetUtcNow();
            if (_last is { } last && now - last.At < maxAge)
            {
                return last.Due;
            }

            var due = await edits.NextDueAsync(scope.BatchId, ct);
            _last = (due, now);
            return due;
        }
        finally
        {
            _gate.Release();
        }
    }
}

using Microsoft.Extensions.Logging;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.FlowControl;

/// <summary>
/// Keeps a process's <see cref="LatencyModel"/> in step with the store: loaded when the server starts (so a new worker,
/// or tonight's run, polls near the expected completion from its first task), then every
/// <see cref="WorkerOptions.LatencySyncInterval"/> what it learned is blended in and the fleet's estimates read back, and
/// once more when it stops. One small statement per interval, never one per job: the hot path stays as it was.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A SemaphoreSlim holds nothing to release unless its AvailableWaitHandle is asked for, which this one never is.")]
public sealed partial class LatencyMemory(IFlowControlStore store, LatencyModel model, ILogger<LatencyMemory> logger)
{
    // One sync at a time. The sync at stop runs while the periodic one may still be saving: both took the same unsaved
    // completions before either adopted the result, and the store counted them twice (a flaky test caught it).
    private readonly SemaphoreSlim _syncing = new(1, 1);

    /// <summary>Saves what was learned since the last sync and takes the fleet's estimates; false when the store failed.</summary>
    public async Task<bool> SyncAsync(CancellationToken ct)
    {
        await _syncing.WaitAsync(ct);
        try
        {
            var unsaved = model.Unsaved();
            var stored = await store.MergeLatenciesAsync(unsaved, ct);
            model.Adopt(unsaved, stored);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Learned latencies only make polling cheaper; without the store the model keeps learning in memory.
            LogSyncFailed(ex);
            return false;
        }
        finally
        {
            _syncing.Release();
        }
    }

    /// <summary>
    /// Whether anything was learned since the last sync: an idle process syncs nothing (it read the fleet's estimates when
    /// it started, and reads them again with its next save), so it costs the store nothing.
    /// </summary>
    public bool Unsaved() => model.Unsaved().Count > 0;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not sync learned provider latencies with the store; trying again at the next interval")]
    private partial void LogSyncFailed(Exception ex);
}

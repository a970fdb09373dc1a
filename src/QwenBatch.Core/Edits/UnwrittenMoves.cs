using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace QwenBatch.Edits;

/// <summary>
/// What a submit learned that the store could not take when it was learned: above all the request id of a task the
/// provider accepted, which is what spares a second paid submit. Kept in this process and written as soon as the store
/// answers again — by <see cref="RunAsync"/> in the background, and first of all by any step of the same edit, which
/// finds it here before it would decide anything from the stale row. Lost only with the process (the window the
/// report's uncertain submits count).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "A SemaphoreSlim holds nothing to release unless its AvailableWaitHandle is asked for, which this one never is.")]
public sealed partial class UnwrittenMoves(EditStateChanger changer, TimeProvider time, ILogger<UnwrittenMoves> logger)
{
    /// <summary>How often the background writer tries again while the store is away.</summary>
    public static readonly TimeSpan RetryInterval = TimeSpan.FromMilliseconds(500);

    private readonly ConcurrentDictionary<long, (EditMove Move, string By)> _moves = new();
    private readonly SemaphoreSlim _kept = new(0);

    public int Count => _moves.Count;

    /// <summary>Keeps a move whose write failed, to write it later; the newest move of an edit wins.</summary>
    public void Keep(EditMove move, string by)
    {
        _moves[move.Current.Id] = (move, by);
        LogKept(move.Current.Id, move.Current.State, move.Next.State);
        _kept.Release();
    }

    /// <summary>Whether a move of this edit waits to be written.</summary>
    public bool Holds(long editId) => _moves.ContainsKey(editId);

    /// <summary>
    /// Writes the kept move of one edit, if any. True when nothing is kept for it any more (written, or the guard missed
    /// because the edit moved on); false while the store is still away.
    /// </summary>
    public async Task<bool> FlushAsync(long editId)
    {
        if (!_moves.TryGetValue(editId, out var kept))
        {
            return true;
        }

        try
        {
            await changer.MoveAsync(kept.Move.Current, kept.Move.Next, kept.By, kept.Move.Reason);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogStillAway(ex, editId);
            return false;
        }

        _moves.TryRemove(KeyValuePair.Create(editId, kept));
        LogWritten(editId, kept.Move.Next.State);
        return true;
    }

    /// <summary>Writes kept moves in the background until stopped, trying again while the store is away.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await _kept.WaitAsync(ct);
                while (!_moves.IsEmpty)
                {
                    var failed = false;
                    foreach (var editId in _moves.Keys)
                    {
                        failed |= !await FlushAsync(editId);
                    }

                    if (failed)
                    {
                        await Task.Delay(RetryInterval, time, ct);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId}: the store is away; {From} → {To} is kept in this process and written when it answers")]
    private partial void LogKept(long editId, EditState from, EditState to);

    [LoggerMessage(Level = LogLevel.Information, Message = "Edit {EditId}: the kept move to {To} is written")]
    private partial void LogWritten(long editId, EditState to);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Edit {EditId}: the store is still away; the kept move waits")]
    private partial void LogStillAway(Exception ex, long editId);
}

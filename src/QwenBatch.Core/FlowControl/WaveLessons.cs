using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.FlowControl;

/// <summary>
/// What a completion tells the rest of its wave: the edits of the same batch and kind still parked at the provider are
/// due when it says tasks like theirs finish (<see cref="IEditStore.PullWaveForwardAsync"/>). A wave is told once, and
/// again only when a later completion says notably sooner, so a batch costs the store a statement or two per process,
/// never one per job.
/// </summary>
public sealed class WaveLessons
{
    /// <summary>
    /// A lesson goes out only when it says at most this share of what the wave was told (or scheduled with) before:
    /// polls due within the schedule's ±10% jitter of the estimate are left where they are.
    /// </summary>
    internal const double Sooner = 0.8;

    private readonly object _lock = new();
    private readonly Dictionary<(long Batch, LatencyKey Key), TimeSpan> _told = [];

    /// <summary>
    /// The pull-forward a completion of <paramref name="edit"/> calls for, or null when its wave knows as much already.
    /// </summary>
    /// <param name="within">
    /// How long after their submits tasks like this one are done: when this one was seen done. Not the estimate the model
    /// learns (the middle of the scout's last gap): the first completion of a wave is often one of its fastest tasks, and
    /// making the wave due at its estimate left most of it unfinished at that poll, one status call more each. When it
    /// was seen is at most a scout's gap later than it finished, so the wave's tasks like it are seen within the goal.
    /// </param>
    /// <param name="scheduledWith">The learned estimate the wave's first polls were scheduled with, if any.</param>
    public WavePull? Offer(EditRecord edit, LatencyKey key, TimeSpan within, TimeSpan? scheduledWith)
    {
        lock (_lock)
        {
            var wave = (edit.BatchId, key);
            var told = _told.TryGetValue(wave, out var t) ? t : scheduledWith;
            if (told is { } before && within > before * Sooner)
            {
                return null;
            }

            _told[wave] = within;
        }

        return new WavePull(edit.BatchId, edit.Provider, edit.Spec.N, edit.Spec.Size, within, within / Sooner);
    }
}

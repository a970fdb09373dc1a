using System.Collections.Concurrent;

namespace QwenBatch.FlowControl;

/// <summary>
/// The request slots this process's feeder booked for the submits it queued, by edit. A submit spends its booked slot
/// only when its POST goes out close to the slot. One that goes out late (its job waited for a free worker, or its move to
/// submitting waited on a lock) would leave together with the requests booked after it, and a provider that counts
/// requests per second refuses the bunch; so it books a fresh slot instead, as every other request does. A submit whose
/// job runs in another process finds no slot here and books its own too.
/// </summary>
public sealed class BookedSlots(TimeProvider time)
{
    /// <summary>Slots older than this are forgotten when the book grows (their edits were run elsewhere, or cancelled).</summary>
    private static readonly TimeSpan Forget = TimeSpan.FromMinutes(1);

    private const int Tidy = 10_000;

    private readonly ConcurrentDictionary<long, DateTimeOffset> _slots = new();

    /// <summary>Records the slot booked for the submit of <paramref name="editId"/>.</summary>
    public void Book(long editId, DateTimeOffset slot)
    {
        _slots[editId] = slot;
        if (_slots.Count > Tidy)
        {
            var before = time.GetUtcNow() - Forget;
            foreach (var old in _slots.Where(s => s.Value < before))
            {
                _slots.TryRemove(old.Key, out _);
            }
        }
    }

    /// <summary>
    /// Takes the edit's booked slot: true when there was one and it passed no more than <paramref name="lateness"/> ago
    /// (or is still to come), so the POST may go out on it now.
    /// </summary>
    public bool TryTake(long editId, TimeSpan lateness) => _slots.TryRemove(editId, out var slot) && time.GetUtcNow() - slot <= lateness;
}

using System.Collections.Concurrent;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.Steps;

/// <summary>
/// Edits kept in memory for unit tests of the steps: guarded transitions and history exactly as the contract says,
/// nothing else (the stores' contract suites prove the rest on real databases). A store failure can be scripted.
/// </summary>
internal sealed class MemoryEdits(TimeProvider time) : IEditStore
{
    private readonly ConcurrentDictionary<long, EditRecord> _edits = new();
    private readonly ConcurrentQueue<EditHistoryEntry> _history = new();
    private int _failures;

    /// <summary>The next <paramref name="count"/> writes throw, as a store that is away would.</summary>
    public void FailWrites(int count) => Interlocked.Exchange(ref _failures, count);

    public int Writes { get; private set; }

    public EditRecord Add(EditRecord edit)
    {
        _edits[edit.Id] = edit with { UpdatedAt = time.GetUtcNow() };
        return _edits[edit.Id];
    }

    public EditRecord this[long id] => _edits[id];

    public Task<EditRecord?> GetEditAsync(long editId, CancellationToken ct) => Task.FromResult(_edits.TryGetValue(editId, out var e) ? e : null);

    public Task<IReadOnlyList<EditHistoryEntry>> GetHistoryAsync(long editId, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<EditHistoryEntry>>(_history.Where(h => h.EditId == editId).ToList());

    public Task<IReadOnlyList<bool>> TransitionManyAsync(IReadOnlyList<EditTransition> transitions, CancellationToken ct)
    {
        if (Interlocked.Decrement(ref _failures) >= 0)
        {
            throw new TimeoutException("the store is away (scripted)");
        }

        lock (_edits)
        {
            Writes++;
            var results = new List<bool>();
            foreach (var t in transitions)
            {
                if (!_edits.TryGetValue(t.Edit.Id, out var stored) || !t.From.Contains(stored.State))
                {
                    results.Add(false);
                    continue;
                }

                var now = time.GetUtcNow();
                _edits[t.Edit.Id] = t.Edit with
                {
                    HangfireJob = stored.HangfireJob,
                    UpdatedAt = now,
                    DueAt = stored.CancelRequested && t.Edit.DueAt > now ? now : t.Edit.DueAt,
                };
                if (stored.State != t.Edit.State || t.Reason is not null)
                {
                    _history.Enqueue(new EditHistoryEntry(t.Edit.Id, now, stored.State, t.Edit.State, t.Reason, t.By));
                }

                results.Add(true);
            }

            return Task.FromResult<IReadOnlyList<bool>>(results);
        }
    }

    public Task<IReadOnlyList<EditRecord>> GetEditsAsync(long batchId, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<EditRecord>>(_edits.Values.Where(e => e.BatchId == batchId).OrderBy(e => e.Key).ToList());

    public Task<IReadOnlyList<EditRecord>> FeedAsync(FeedRequest request, IFeedPolicy policy, CancellationToken ct) => throw Unused();

    public Task<IReadOnlyList<EditRecord>> ClaimPollsAsync(PollClaim claim, CancellationToken ct) => throw Unused();

    public Task<DateTimeOffset?> PullWaveForwardAsync(WavePull pull, CancellationToken ct) => throw Unused();

    public Task<int> BindJobsAsync(IReadOnlyList<JobBinding> bindings, CancellationToken ct) => throw Unused();

    public Task<int> ForgetJobsAsync(long? batchId, string by, CancellationToken ct) => throw Unused();

    public Task<NextDue> NextDueAsync(long? batchId, CancellationToken ct) => throw Unused();

    public Task<IReadOnlyList<EditRecord>> FindStillAsync(StillQuery query, CancellationToken ct) => throw Unused();

    public Task<int> RequestCancelAsync(long batchId, CancellationToken ct) => throw Unused();

    public Task<int> CancelEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct) => throw Unused();

    public Task<int> RequeueAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct) => throw Unused();

    public Task<int> RequeueEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct) => throw Unused();

    public Task<int> ReleaseHeldWithinDailyBudgetAsync(DailyBudgetRelease release, CancellationToken ct) => throw Unused();

    private static NotSupportedException Unused() => new("Not part of the step tests: the stores' contract suites prove it.");
}

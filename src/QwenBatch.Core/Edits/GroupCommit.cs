using QwenBatch.Storage;

namespace QwenBatch.Edits;

/// <summary>
/// Coalesces the transitions of concurrent steps into one store transaction: while all writers' groups are being
/// written, the transitions that arrive wait and go together in the next. A transition that finds a writer free goes at
/// once, so nothing waits for company.
/// Every caller still awaits its own guarded write, so a step moves on only once its write is durable (the request id of
/// an accepted submit before anything else).
/// </summary>
/// <param name="writers">
/// Groups written at once. More than one keeps a busy worker from queueing behind a single round trip (and gives the
/// database more than one backend to run on); few enough that groups still form under load.
/// </param>
internal sealed class GroupCommit(IJobStore store, int writers)
{
    private readonly object _lock = new();
    private List<Pending> _queue = [];
    private int _writing;

    public Task<bool> TransitionAsync(EditTransition transition)
    {
        var pending = new Pending(transition, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
        bool lead;
        lock (_lock)
        {
            _queue.Add(pending);
            lead = _writing < writers;
            if (lead)
            {
                _writing++;
            }
        }

        if (lead)
        {
            _ = WriteAsync();
        }

        return pending.Result.Task;
    }

    private async Task WriteAsync()
    {
        while (true)
        {
            List<Pending> group;
            lock (_lock)
            {
                if (_queue.Count == 0)
                {
                    _writing--;
                    return;
                }

                group = _queue;
                _queue = [];
            }

            if (group.Count == 1)
            {
                await WriteOneAsync(group[0]);
                continue;
            }

            try
            {
                // Recording a finished step must not be lost to a stopping token: the result is already paid for.
                var moved = await store.TransitionManyAsync(group.Select(p => p.Transition).ToList(), CancellationToken.None);
                for (var i = 0; i < group.Count; i++)
                {
                    group[i].Result.SetResult(moved[i]);
                }
            }
            catch (Exception)
            {
                // Nothing of the group was applied (a deadlock with an operator's cancel, a dropped connection): each write
                // is tried alone, so one job's trouble is not every job's, and each caller sees its own outcome.
                await Task.WhenAll(group.Select(WriteOneAsync));
            }
        }
    }

    private async Task WriteOneAsync(Pending pending)
    {
        try
        {
            pending.Result.SetResult(await store.TransitionAsync(pending.Transition, CancellationToken.None));
        }
        catch (Exception ex)
        {
            pending.Result.SetException(ex);
        }
    }

    private sealed record Pending(EditTransition Transition, TaskCompletionSource<bool> Result);
}

using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Jobs;

/// <summary>
/// Moves edits' Hangfire jobs for the feeder and the poller, through Hangfire's own client and state changer (so every
/// filter runs, and a move is applied only from the states it expects). An edit keeps one job for its whole life: handed
/// to Hangfire again (fed after a throttle, downloaded after the provider finished) it is its own job that is enqueued
/// again; a new job is created only for an edit without one, or whose job is gone from the storage.
/// </summary>
public sealed class EditJobClient(JobStorage storage, IBackgroundJobClient client, IBackgroundJobStateChanger states, IEditStore edits, HangfireOptions options)
{
    /// <summary>The parked states an edit's job may be woken from (and final ones, for an edit requeued by an operator).</summary>
    private static readonly string[] Resumable =
    [
        States.WaitingState.StateName, States.AtProviderState.StateName, ScheduledState.StateName,
        FailedState.StateName, DeletedState.StateName,
    ];

    /// <summary>
    /// The job that runs edit <paramref name="editId"/>, bound to QwenBatch's queue: every move of it to Enqueued (a retry
    /// Hangfire scheduled, a requeue from the dashboard) goes to that queue.
    /// </summary>
    public static Job JobFor(long editId, string queue) => Job.FromExpression<EditJob>(job => job.RunAsync(editId, null, CancellationToken.None), queue);

    /// <summary>
    /// Enqueues each edit's job, creating the jobs of edits that have none (or whose job is gone) and recording them.
    /// A job already enqueued or running is left alone: it finds the edit's new state when it runs, or (a run that had
    /// read the edit before) when it reads it again after parking.
    /// </summary>
    public async Task EnqueueAsync(IReadOnlyList<EditRecord> toRun, string reason, CancellationToken ct)
    {
        var created = new System.Collections.Concurrent.ConcurrentBag<JobBinding>();

        // A few at once: each is a few round trips of Hangfire's storage, which the database can overlap.
        await Parallel.ForEachAsync(toRun, new ParallelOptions { MaxDegreeOfParallelism = EnqueueConcurrency, CancellationToken = CancellationToken.None }, async (edit, _) =>
        {
            var state = new EnqueuedState(options.Queue) { Reason = reason };
            if (edit.HangfireJob is { } jobId && (Move(jobId, state, Resumable) is not null || await WokenOrBusyAsync(jobId, edit.Id, state)))
            {
                // Woken from where it was parked; or already enqueued, running or done, and a run finds the edit's new state.
                return;
            }

            created.Add(new JobBinding(edit.Id, client.Create(JobFor(edit.Id, options.Queue), state), edit.HangfireJob));
        });

        if (!created.IsEmpty)
        {
            // A feeder that stops before this leaves jobs that bind themselves when they run.
            await edits.BindJobsAsync(created.ToList(), ct);
        }
    }

    /// <summary>Jobs created or moved at once by one call.</summary>
    public const int EnqueueConcurrency = 4;

    /// <summary>Moves the job to <paramref name="state"/> from one of <paramref name="from"/>; the state applied, or null.</summary>
    public IState? Move(string jobId, IState state, params string[] from)
    {
        using var connection = storage.GetConnection();
        return states.ChangeState(new StateChangeContext(storage, connection, jobId, state, from));
    }

    /// <summary>The job's current state's name, or null when the storage no longer has the job.</summary>
    public string? StateOf(string jobId)
    {
        using var connection = storage.GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    /// <summary>
    /// A job that is not parked: true when it is enqueued or running, or succeeded with its edit settled since (whoever
    /// asked had read the edit before: a second wake-up for a download another one already ran); a succeeded job whose
    /// edit still needs a worker is woken. False when the storage no longer has the job.
    /// </summary>
    private async Task<bool> WokenOrBusyAsync(string jobId, long editId, IState state)
    {
        if (StateOf(jobId) is not { } current)
        {
            return false;
        }

        if (current == SucceededState.StateName && await edits.GetEditAsync(editId, CancellationToken.None) is { } now && !now.State.IsSettled())
        {
            Move(jobId, state, SucceededState.StateName);
        }

        return true;
    }
}

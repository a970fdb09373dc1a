using System.Threading.Channels;
using Hangfire.Server;
using Hangfire.States;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Hangfire.States;
using QwenBatch.Server;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Polling;

/// <summary>
/// Watches the provider for every edit at the provider, so that no Hangfire worker waits on one: it takes due edits from
/// the store (any process's: a server that stops leaves its edits to the others), keeps up to
/// <c>Worker:PollConcurrency</c> status calls on their way, writes their answers together, and moves each edit's job on:
/// to its download when the provider finished, back to the backlog when the task is to be submitted again, to failed or
/// deleted when it ended so (<see cref="VerdictWriter"/>). It sleeps until the next poll is due, or this process submits something due sooner.
/// </summary>
public sealed partial class Poller(
    IEditStore edits,
    VerdictWriter writer,
    PollStep step,
    DueProbe probe,
    EngineSignals signals,
    EngineScope scope,
    WorkerOptions options,
    TimeProvider time,
    ILogger<Poller> logger) : IBackgroundProcessAsync
{
    /// <summary>How long a taken edit is no other poller's: longer than any status call with its retries.</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    private readonly Channel<PollVerdict> _verdicts = Channel.CreateUnbounded<PollVerdict>(new UnboundedChannelOptions { SingleReader = true });
    private readonly HashSet<Task> _inFlight = [];
    private DateTimeOffset? _nextDue;

    /// <summary>
    /// One round. Hangfire runs a background process on a scheduler of its own with one thread; the round runs on the
    /// thread pool instead, so that no wait inside it (Hangfire's synchronous filters among them) can wait on that one
    /// thread for a continuation queued behind itself.
    /// </summary>
    public Task ExecuteAsync(BackgroundProcessContext context) => Task.Run(() => RoundAsync(context), CancellationToken.None);

    private async Task RoundAsync(BackgroundProcessContext context)
    {
        var stopping = context.StoppingToken;
        var wake = signals.PollerWake;
        var more = false;
        try
        {
            await WriteAsync(context.ServerId);
            if (!stopping.IsCancellationRequested)
            {
                more = await TakeAsync(context.StoppedToken, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // The store is away: polls already answered wait in the channel, and the poller looks again.
            LogPollFailed(ex);
            await SleepAsync(options.FallbackPollInterval, wake, stopping);
            return;
        }

        if (!more && !stopping.IsCancellationRequested)
        {
            try
            {
                // With every status call slot taken, the next thing to do is to write an answer: wait for one.
                var full = _inFlight.Count >= options.PollConcurrency;
                await SleepAsync(full ? Timeout.InfiniteTimeSpan : await UntilNextAsync(stopping), wake, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
            }
        }

        if (stopping.IsCancellationRequested)
        {
            // Stopping is not losing: answers already paid for (a completion, a cancel) are written before the process
            // goes, whether the stop came while taking or while sleeping (Hangfire runs no further round). An answer left
            // unwritten would leave its edit claimed, hidden from every poller for the lease.
            await Task.WhenAll(_inFlight);
            await WriteAsync(context.ServerId);
        }
    }

    /// <summary>Takes due edits while there is room for their status calls; true when more may be due at once.</summary>
    private async Task<bool> TakeAsync(CancellationToken stopped, CancellationToken stopping)
    {
        _inFlight.RemoveWhere(t => t.IsCompleted);
        var room = options.PollConcurrency - _inFlight.Count;
        if (room <= 0)
        {
            return false;
        }

        if (signals.TakeNextPoll() is { } mine && (_nextDue is null || mine < _nextDue))
        {
            _nextDue = mine;
        }

        // Nothing this process knows of is due: the store is asked (one small statement, shared with the feeder) whether
        // anything else is, such as the edits of a server that stopped.
        var now = time.GetUtcNow();
        if (_nextDue is null || _nextDue > now)
        {
            if ((await probe.GetAsync(options.FallbackPollInterval / 2, stopping)).AtProvider is { } stored && (_nextDue is null || stored < _nextDue))
            {
                _nextDue = stored;
            }

            if (_nextDue is null || _nextDue > now)
            {
                return false;
            }
        }

        // Not given up to the stopping token: a claim cut off after it moved the edits' due times would hide them from every
        // poller for the whole lease. Once taken, each is answered or given back (see PollAsync).
        var taken = await edits.ClaimPollsAsync(new PollClaim(room, Lease, scope.BatchId), CancellationToken.None);
        LogTaken(taken.Count, room);
        foreach (var edit in taken)
        {
            // On the thread pool: this process runs on one thread of Hangfire's, which the status calls must not wait for.
            _inFlight.Add(Task.Run(() => PollAsync(edit, stopped), CancellationToken.None));
        }

        if (taken.Count == room)
        {
            return true;
        }

        // Everything due was taken: when the next is due is the store's to say.
        _nextDue = null;
        probe.Invalidate();
        return false;
    }

    private async Task PollAsync(EditRecord edit, CancellationToken ct)
    {
        PollVerdict verdict;
        try
        {
            verdict = await step.PollAsync(edit, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The server stopped before the provider answered: the claim is given back (due now), written with the other
            // answers on the way out, so the next poller — another server, or the next run on this state folder — polls the
            // edit at once instead of after the lease.
            var now = time.GetUtcNow();
            verdict = new PollVerdict(new EditMove(edit, edit with { DueAt = now }, null),
                new StepOutcome.AtProvider(edit.RequestId!, edit.Provider, edit.SubmittedAt ?? edit.UpdatedAt, now));
        }

        _verdicts.Writer.TryWrite(verdict);
    }

    /// <summary>Writes every answer so far in one transaction, and the jobs move on (<see cref="VerdictWriter"/>).</summary>
    private async Task WriteAsync(string serverId)
    {
        var verdicts = new List<PollVerdict>();
        while (_verdicts.Reader.TryRead(out var verdict))
        {
            verdicts.Add(verdict);
        }

        if (verdicts.Count == 0)
        {
            return;
        }

        IReadOnlyList<EditRecord?> moved;
        try
        {
            moved = await writer.WriteAsync(verdicts, serverId);
        }
        catch
        {
            // Kept for the next try: the answers are what the provider said, and a completion's charge must be written.
            foreach (var verdict in verdicts)
            {
                _verdicts.Writer.TryWrite(verdict);
            }

            throw;
        }

        var finished = verdicts.Count(v => v.Outcome is StepOutcome.Downloadable);
        LogWritten(verdicts.Count, finished);
        for (var i = 0; i < verdicts.Count; i++)
        {
            if (moved[i] is not null && verdicts[i].Outcome is StepOutcome.AtProvider o)
            {
                _nextDue = _nextDue is { } n && n < o.PollAt ? n : o.PollAt;
            }
        }

        await TeachWavesAsync(verdicts.Where((v, i) => moved[i] is not null && v.Lesson is not null).Select(v => v.Lesson!));
    }

    /// <summary>
    /// Makes the parked edits of the waves whose completions were just written due when those say, and looks at them by
    /// that time: the edits are this process's to poll as much as anyone's, and the cached next due time is later.
    /// </summary>
    private async Task TeachWavesAsync(IEnumerable<WavePull> lessons)
    {
        foreach (var lesson in lessons)
        {
            try
            {
                // Not the edits this or another poller is polling now: a claim made them due a lease later.
                var pull = lesson with { DueBefore = time.GetUtcNow() + (Lease / 2) };
                if (await edits.PullWaveForwardAsync(pull, CancellationToken.None) is { } due)
                {
                    LogWavePulled(lesson.BatchId, lesson.Within);
                    _nextDue = _nextDue is { } n && n < due ? n : due;
                }
            }
            catch (Exception ex)
            {
                // A lesson only makes polling cheaper: the wave's edits are still due at their parked time.
                LogWavePullFailed(ex, lesson.BatchId);
            }
        }
    }

    /// <summary>Until the next poll due, as far as this process knows (the store is asked again at the next look).</summary>
    private async Task<TimeSpan> UntilNextAsync(CancellationToken ct)
    {
        if (_nextDue is null && (await probe.GetAsync(options.FallbackPollInterval / 2, ct)).AtProvider is { } stored)
        {
            _nextDue = stored;
        }

        var until = _nextDue is { } due ? due - time.GetUtcNow() : options.FallbackPollInterval;
        return until < TimeSpan.Zero ? TimeSpan.Zero : until < options.FallbackPollInterval ? until : options.FallbackPollInterval;
    }

    private async Task SleepAsync(TimeSpan wait, Task wake, CancellationToken stopping)
    {
        if (wait <= TimeSpan.Zero && wait != Timeout.InfiniteTimeSpan)
        {
            return;
        }

        using var sleep = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var answered = _verdicts.Reader.WaitToReadAsync(sleep.Token).AsTask();
        await Task.WhenAny(Task.Delay(wait, time, sleep.Token), wake, answered);
        await sleep.CancelAsync();
        try
        {
            await answered;
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Took {Count} edit(s) to poll (room for {Room})")]
    private partial void LogTaken(int count, int room);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Wrote {Count} poll answer(s), {Done} of them finished tasks")]
    private partial void LogWritten(int count, int done);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Batch {BatchId}: parked edits at the provider made due {Within} after their submit")]
    private partial void LogWavePulled(long batchId, TimeSpan within);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Batch {BatchId}: could not make parked edits due sooner; they poll at their parked time")]
    private partial void LogWavePullFailed(Exception ex, long batchId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Polling failed; looking again shortly")]
    private partial void LogPollFailed(Exception ex);
}

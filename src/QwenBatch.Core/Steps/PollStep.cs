using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.FlowControl;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Steps;

/// <summary>
/// One look at an edit at the provider, for the poller: its cancel first when one was requested, its timeout, or one
/// status call. Decides the move (not written: the poller writes a round's moves together) and what the edit's Hangfire
/// job shows next. Never throws for a provider's failure: a failed status call is the edit's failed attempt.
/// </summary>
public sealed partial class PollStep(
    ProviderRegistry providers,
    WorkerOptions options,
    PollSchedule schedule,
    LatencyModel latency,
    LatencyScouts scouts,
    WaveLessons lessons,
    TimeProvider time,
    Func<double> random,
    ILogger<PollStep> logger)
{
    public async Task<PollVerdict> PollAsync(EditRecord edit, CancellationToken ct)
    {
        var account = providers.Get(edit.Provider);
        try
        {
            var elapsed = time.GetUtcNow() - (edit.SubmittedAt ?? time.GetUtcNow());
            if (edit.CancelRequested)
            {
                var outcome = await account.Client.CancelAsync(edit.RequestId!, ct);
                LogCancelled(edit.Id, edit.RequestId!, outcome);
                if (outcome != CancelOutcome.AlreadyCompleted)
                {
                    var why = $"cancelled by an operator; {Describe(outcome)}";
                    return new PollVerdict(new EditMove(edit, edit with { State = EditState.Cancelled, Error = why, FinishedAt = time.GetUtcNow() }, why),
                        new StepOutcome.Cancelled(why));
                }

                // Finished before the cancel reached it: paid for, so fetched as usual.
                edit = edit with { CancelRequested = false };
            }
            else if (elapsed > options.JobTimeout)
            {
                var outcome = await account.Client.CancelAsync(edit.RequestId!, ct);
                var why = $"timed out: still at the provider after the {options.JobTimeout} Worker:JobTimeout; cancel sent: {Describe(outcome)}";
                LogTimedOut(edit.Id, why);
                return new PollVerdict(new EditMove(edit, edit with { State = EditState.Failed, Error = why, FinishedAt = time.GetUtcNow() }, why),
                    new StepOutcome.Failed(why));
            }

            PollResult result;
            try
            {
                result = await account.Client.PollAsync(edit.RequestId!, ct);
            }
            catch (ProviderException ex) when (ex.Kind == ProviderErrorKind.NotFound)
            {
                result = new PollResult(PollStatus.Failed, Error: "the provider no longer knows this request");
            }

            return Decide(edit, account, result);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return Failure(edit, ex);
        }
    }

    /// <summary>
    /// What a provider's webhook delivery makes of a parked edit, as a poll with that answer would, without a status call.
    /// Null when it changes nothing here: the task is not finished (a delivery only reports ends), or a cancel was asked
    /// for, which the poller sends and settles. A delivery comes moments after the task finished, so its latency is
    /// learned as it is.
    /// </summary>
    public PollVerdict? Delivered(EditRecord edit, PollResult result)
    {
        if (edit.CancelRequested || result.Status is not (PollStatus.Completed or PollStatus.Failed or PollStatus.Cancelled))
        {
            return null;
        }

        if (result.Status == PollStatus.Completed && edit.SubmittedAt is { } submitted)
        {
            latency.Observe(LatencyModel.Key(edit.Provider, edit.Spec.N, edit.Spec.Size), time.GetUtcNow() - submitted);
        }

        return Decide(edit, providers.Get(edit.Provider), result, delivered: true);
    }

    /// <summary>What the poll's answer (or a delivery's) makes of the edit.</summary>
    private PollVerdict Decide(EditRecord edit, ProviderAccount account, PollResult result, bool delivered = false)
    {
        var now = time.GetUtcNow();
        var key = LatencyModel.Key(edit.Provider, edit.Spec.N, edit.Spec.Size);
        switch (result.Status)
        {
            case PollStatus.Completed:
                var outputs = result.Outputs!;
                var due = edit.DueAt - edit.SubmittedAt!.Value;
                var learned = latency.Expected(key);

                // A first poll of an edit submitted while the key was unlearned was a scout's or a parked one's (perhaps
                // pulled forward since): not at an estimate, whatever was learned by now, so it cannot nudge one.
                var scheduledWith = edit.Polls == 0 && scouts.SubmittedUnlearned(key, edit.SubmittedAt.Value) ? null : learned;
                var measured = !delivered && schedule.RanOnTime(due, now - edit.DueAt) && schedule.Measures(due, edit.Polls, scheduledWith);
                if (measured)
                {
                    latency.ObserveCompletion(key, due, edit.Polls, schedule.GapBefore(due, edit.Polls));
                }

                // The rest of the wave is due when this task was seen done: when its poll was due if that measured it (as
                // the model learns), else when it was answered (a request-bound run answers polls late, and parked edits
                // should not wait longer than this one took).
                // A wave awaiting webhooks is not pulled forward: its deliveries come by themselves, and its polls are fallbacks.
                var lesson = account.Options.Webhook is null ? lessons.Offer(edit, key, measured ? due : now - edit.SubmittedAt.Value, learned) : null;

                // Settled: the reservation becomes the charge for the images the provider made.
                var completed = CompletedReason(result);
                return new PollVerdict(new EditMove(edit, edit with
                {
                    State = EditState.Downloading,
                    Outputs = outputs,
                    CostUsd = edit.CostUsd + (outputs.Count * account.Options.PricePerImage),
                    ReservedUsd = 0,
                    StartedAt = edit.StartedAt ?? now,
                    Attempt = 0,
                    Error = null,
                    DueAt = now,
                }, completed), new StepOutcome.Downloadable(outputs.Count, completed), lesson);

            case PollStatus.Failed when edit.AcceptedSubmits <= options.MaxProviderResubmits:
                LogResubmitting(edit.Id, edit.RequestId!, result.Error ?? "unknown");
                var again = $"provider task {edit.RequestId} failed: {result.Error}; submitting again";
                return new PollVerdict(new EditMove(edit, edit with
                {
                    State = EditState.Pending,
                    RequestId = null,
                    ReservedUsd = 0,
                    Attempt = 0,
                    Polls = 0,
                    Error = result.Error,
                    DueAt = now,
                }, again), new StepOutcome.Backlog(again, now));

            case PollStatus.Failed:
                var failed = $"provider task {edit.RequestId} failed: {result.Error}";
                return new PollVerdict(new EditMove(edit, edit with { State = EditState.Failed, Error = result.Error, FinishedAt = now }, failed),
                    new StepOutcome.Failed(failed));

            case PollStatus.Cancelled:
                const string cancelled = "cancelled at the provider";
                return new PollVerdict(new EditMove(edit, edit with { State = EditState.Cancelled, Error = cancelled, FinishedAt = now }, cancelled),
                    new StepOutcome.Cancelled(cancelled));

            default:
                var polls = edit.Polls + 1;
                var started = result.Status == PollStatus.Running ? edit.StartedAt ?? now : edit.StartedAt;
                var elapsed = now - edit.SubmittedAt!.Value;
                var next = now + (account.Options.Webhook is { } webhook
                    ? schedule.NextAwaitingWebhook(elapsed, latency.Expected(key), webhook.FallbackMargin)
                    : schedule.Next(elapsed, latency.Expected(key)));
                return new PollVerdict(new EditMove(edit, edit with { Polls = polls, Attempt = 0, StartedAt = started, DueAt = next }, null),
                    new StepOutcome.AtProvider(edit.RequestId!, edit.Provider, edit.SubmittedAt!.Value, next));
        }
    }

    /// <summary>
    /// A status call (or cancel) that failed: nothing sent or the provider down costs no attempt, only a wait; anything else
    /// is an attempt, and the edit fails once they are spent (the task may still finish at the provider).
    /// </summary>
    private PollVerdict Failure(EditRecord edit, Exception error)
    {
        var now = time.GetUtcNow();
        var message = error is ProviderException ? error.Message : $"{error.GetType().Name}: {error.Message}";
        if (error is ProviderException { Kind: ProviderErrorKind.Throttled or ProviderErrorKind.Unavailable } waiting)
        {
            var wait = (waiting.RetryAfter is { } after && after > TimeSpan.Zero ? after : options.RetryBaseDelay) + (options.RetryBaseDelay * random());
            var dueAt = now + wait;
            return new PollVerdict(new EditMove(edit, edit with { Error = message, DueAt = dueAt }, null),
                new StepOutcome.AtProvider(edit.RequestId!, edit.Provider, edit.SubmittedAt ?? now, dueAt));
        }

        var attempt = edit.Attempt + 1;
        if (attempt >= options.MaxAttempts)
        {
            var why = $"gave up polling after {attempt} attempts: {message}";
            LogGaveUp(edit.Id, why);
            return new PollVerdict(new EditMove(edit, edit with { Attempt = attempt, State = EditState.Failed, Error = message, FinishedAt = now }, why),
                new StepOutcome.Failed(why));
        }

        var delay = Backoff.Delay(attempt, options.RetryBaseDelay, options.RetryMaxDelay, random());
        LogPollFailed(edit.Id, attempt, delay, message);
        return new PollVerdict(new EditMove(edit, edit with { Attempt = attempt, Error = message, DueAt = now + delay }, $"poll attempt {attempt} failed: {message}"),
            new StepOutcome.AtProvider(edit.RequestId!, edit.Provider, edit.SubmittedAt ?? now, now + delay));
    }

    public static string Describe(CancelOutcome outcome) => outcome switch
    {
        CancelOutcome.Requested => "the provider accepted the cancel",
        CancelOutcome.AlreadyCompleted => "the provider had already finished the task",
        CancelOutcome.NotFound => "the provider did not know the task",
        _ => "the provider has no cancel: tracking stopped, and the provider may still charge for the task",
    };

    /// <summary>What the history keeps of a completion: outputs, NSFW flags and the provider's inference time when reported.</summary>
    internal static string CompletedReason(PollResult result)
    {
        var outputs = result.Outputs!;
        var reason = $"completed with {outputs.Count} output(s)";
        var flagged = outputs.Count(o => o.HasNsfw == true);
        if (flagged > 0)
        {
            reason += $", {flagged} flagged NSFW by the provider";
        }

        return result.Inference is { } inference ? $"{reason}, inference {inference.TotalMilliseconds:0} ms" : reason;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId}: provider task {RequestId} failed ({Error}); submitting again")]
    private partial void LogResubmitting(long editId, string requestId, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId} {Reason}")]
    private partial void LogTimedOut(long editId, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Edit {EditId}: cancel of {RequestId} answered {Outcome}")]
    private partial void LogCancelled(long editId, string requestId, CancelOutcome outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId}: poll attempt {Attempt} failed, trying again in {Delay}: {Error}")]
    private partial void LogPollFailed(long editId, int attempt, TimeSpan delay, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Edit {EditId} {Reason}")]
    private partial void LogGaveUp(long editId, string reason);
}

/// <summary>A poll's decision: the move to write, what the edit's Hangfire job shows next, and what its wave learns.</summary>
/// <param name="Lesson">Parked edits of the same wave to make due, once the move is written (see <see cref="WaveLessons"/>).</param>
public sealed record PollVerdict(EditMove Move, StepOutcome Outcome, WavePull? Lesson = null);

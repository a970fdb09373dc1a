using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Server;

namespace QwenBatch.Steps;

/// <summary>
/// Turns a step's exception into the edit's next state. Nothing sent (the allowance is booked far ahead, the provider's
/// circuit is open): back to the backlog without spending an attempt. Refused by the provider, or an unusable input:
/// failed for good. Anything else: an attempt counted, with an uncertain submit counted where a POST may have been
/// accepted, and the edit waits for Hangfire to retry the step (or to give up, which fails it).
/// </summary>
public sealed partial class StepFailures(EditStateChanger changer, WorkerOptions options, TimeProvider time, Func<double> random, ILogger<StepFailures> logger)
{
    /// <summary>Writes what the failure makes of the edit; returns what the step's runner should do.</summary>
    public async Task<StepOutcome> RecordAsync(EditRecord current, Exception error, string by)
    {
        var (move, outcome) = Decide(current, error);
        if (move is null)
        {
            return outcome;
        }

        var moved = await changer.MoveAsync(move.Current, move.Next, by, move.Reason);
        return moved is null && outcome is not StepOutcome.Retry ? StepOutcome.Moved.Instance : outcome;
    }

    /// <summary>What the failure makes of the edit (the move to write, if any) and what the step's runner should do.</summary>
    public (EditMove? Move, StepOutcome Outcome) Decide(EditRecord current, Exception error)
    {
        var now = time.GetUtcNow();
        if (error is ProviderException { Kind: ProviderErrorKind.Throttled or ProviderErrorKind.Unavailable } waiting
            && current.State is EditState.Queued or EditState.Submitting)
        {
            var wait = waiting.Kind == ProviderErrorKind.Throttled
                ? waiting.RetryAfter ?? options.FirstPollDelay
                : (waiting.RetryAfter is { } after && after > TimeSpan.Zero ? after : options.RetryBaseDelay) + (options.RetryBaseDelay * random());
            var reason = waiting.Kind == ProviderErrorKind.Throttled
                ? $"not sent, back in the backlog for {Seconds(wait)}: {waiting.Message}"
                : $"provider unavailable, back in the backlog for {Seconds(wait)}: {waiting.Message}";
            LogBacklog(current.Id, wait, waiting.Message);
            var back = current with { State = EditState.Pending, ReservedUsd = 0, Error = waiting.Message, DueAt = now + wait };
            return (new EditMove(current, back, reason), new StepOutcome.Backlog(reason, now + wait));
        }

        var message = error is ProviderException or EditInputException ? error.Message : $"{error.GetType().Name}: {error.Message}";

        // In 'submitting' only a provider's clear "not accepted" is certain; anything else (an uncertain answer, the store
        // failing to record an accepted submit) may have left a paid task behind, and is counted where the report shows it.
        var uncertain = current.State == EditState.Submitting && error is not ProviderException { Kind: not ProviderErrorKind.Uncertain };
        var failed = current with
        {
            Attempt = current.Attempt + 1,
            Error = message,
            UncertainSubmits = current.UncertainSubmits + (uncertain ? 1 : 0),
        };

        if (error is ProviderException { Kind: ProviderErrorKind.Rejected } or EditInputException)
        {
            LogFailed(current.Id, message);
            var reason = $"rejected: {message}";
            return (new EditMove(current, failed with { State = EditState.Failed, FinishedAt = now }, reason), new StepOutcome.Failed(reason));
        }

        // A submit goes back to queued (its reservation and its place stay); a download stays downloading. A queued edit
        // whose step failed before sending anything has nothing to write.
        LogRetrying(current.Id, failed.Attempt, message);
        var retry = new StepOutcome.Retry(error);
        return current.State switch
        {
            EditState.Submitting => (new EditMove(current, failed with { State = EditState.Queued },
                $"attempt {failed.Attempt} failed{(uncertain ? " (the provider may have accepted the submit)" : "")}: {message}"), retry),
            EditState.Downloading => (new EditMove(current, failed, $"attempt {failed.Attempt} failed: {message}"), retry),
            _ => (null, retry),
        };
    }

    private static string Seconds(TimeSpan wait) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{wait.TotalSeconds:0.#} s");

    [LoggerMessage(Level = LogLevel.Information, Message = "Edit {EditId} waits {Delay} in the backlog: {Error}")]
    private partial void LogBacklog(long editId, TimeSpan delay, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId} attempt {Attempt} failed; Hangfire retries it: {Error}")]
    private partial void LogRetrying(long editId, int attempt, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Edit {EditId} failed: {Error}")]
    private partial void LogFailed(long editId, string error);
}

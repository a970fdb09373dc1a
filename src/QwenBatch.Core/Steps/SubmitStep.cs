using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.FlowControl;
using QwenBatch.Providers;

namespace QwenBatch.Steps;

/// <summary>
/// queued → submitting → at_provider: sends the edit to its provider and records the request id before anything else.
/// The edit is marked submitting only as its POST goes out: its budget was reserved and its request slot booked when the
/// feeder queued it, so nothing waits here — unless the slot went by while its job waited, and the POST books a fresh one.
/// </summary>
public sealed partial class SubmitStep(
    EditStateChanger changer,
    ProviderRegistry providers,
    EditRequestBuilder requests,
    PollSchedule schedule,
    LatencyModel latency,
    LatencyScouts scouts,
    UnwrittenMoves unwritten,
    StepFailures failures,
    TimeProvider time,
    ILogger<SubmitStep> logger,
    BookedSlots? slots = null)
{
    /// <summary>Tries to store an accepted request id before it is kept in the process for later.</summary>
    internal const int StoreAttempts = 3;

    /// <summary>Wait before the second try to store a request id; grows linearly.</summary>
    internal static readonly TimeSpan StoreRetryDelay = TimeSpan.FromMilliseconds(250);

    public async Task<StepOutcome> RunAsync(EditRecord edit, string by, CancellationToken ct)
    {
        if (edit.State != EditState.Queued)
        {
            throw new InvalidOperationException($"Edit {edit.Id} is {edit.State}, not queued: there is nothing to submit.");
        }

        if (edit.CancelRequested)
        {
            // Flagged while an earlier attempt was being sent, and back in the queue for a retry: not sent again.
            const string why = "cancelled by an operator before it was submitted again";
            var cancelled = await changer.MoveAsync(edit, edit with { State = EditState.Cancelled, Error = why, FinishedAt = time.GetUtcNow() }, by, why);
            return cancelled is null ? StepOutcome.Moved.Instance : new StepOutcome.Cancelled(why);
        }

        var current = edit;
        try
        {
            var account = providers.Get(edit.Provider);
            var request = await requests.BuildAsync(edit.Spec, account, ct);

            // Checkpoint: from the move to 'submitting' until the request id is stored, the provider may accept a task we
            // cannot see. A process killed in this window leaves the edit in 'submitting'; the next run of its job counts
            // an uncertain submit before trying again.
            if (await changer.MoveAsync(edit, edit with { State = EditState.Submitting }, by, reason: null) is not { } submitting)
            {
                return StepOutcome.Moved.Instance;
            }

            current = submitting;
            SubmitAccepted accepted;
            using (OnBookedSlot(edit.Id, account.Options) ? PrebookedRequest.Begin() : null)
            {
                accepted = await account.Client.SubmitAsync(request, ct);
            }

            var now = time.GetUtcNow();
            var atProvider = submitting with
            {
                State = EditState.AtProvider,
                RequestId = accepted.RequestId,
                AcceptedSubmits = submitting.AcceptedSubmits + 1,
                Attempt = 0,
                Polls = 0,
                Error = null,
                SubmittedAt = now,
                StartedAt = null,
                DueAt = now + FirstPoll(edit, account.Options),
            };
            return await StoreAcceptedAsync(new EditMove(submitting, atProvider, $"accepted as {accepted.RequestId}"), by);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && current.State == EditState.Queued)
        {
            // Stopped before anything was sent: the job runs again and finds the edit as it was.
            throw;
        }
        catch (Exception ex)
        {
            return await RecordFailureAsync(current, ex, by);
        }
    }

    /// <summary>
    /// When an accepted task is first polled: at the learned latency of its kind; with nothing learned, a scout polls
    /// early and the rest of its wave is parked (at the provider's <see cref="ProviderOptions.ExpectedLatency"/>, or the
    /// max interval) until a scout's completion pulls it forward.
    /// </summary>
    private TimeSpan FirstPoll(EditRecord edit, ProviderOptions account)
    {
        var key = LatencyModel.Key(edit.Provider, edit.Spec.N, edit.Spec.Size);
        if (account.Webhook is { } webhook)
        {
            return schedule.FirstAwaitingWebhook(latency.Expected(key) ?? account.ExpectedLatency, webhook.FallbackMargin);
        }

        if (latency.Expected(key) is { } learned)
        {
            return schedule.First(learned);
        }

        return scouts.Enlist(key) ? schedule.First(null) : schedule.Parked(account.ExpectedLatency);
    }

    /// <summary>
    /// Whether the POST goes out on the slot the feeder booked for it: yes unless the provider is rate-limited and the slot
    /// was booked elsewhere or passed more than one request interval ago (see <see cref="BookedSlots"/>); then the request
    /// books a fresh slot and waits for it, rather than leave together with the requests booked after it.
    /// </summary>
    private bool OnBookedSlot(long editId, ProviderOptions account) =>
        slots is null || account.RequestInterval is not { } interval || slots.TryTake(editId, interval);

    /// <summary>
    /// A failed submit is written like any failed step; but one that was sent knows something the store must not lose (a
    /// clear refusal, or that the provider may have a task): if the store is away, that move is kept for later too.
    /// </summary>
    private async Task<StepOutcome> RecordFailureAsync(EditRecord current, Exception error, string by)
    {
        var (move, outcome) = failures.Decide(current, error);
        if (move is null)
        {
            return outcome;
        }

        try
        {
            var moved = await changer.MoveAsync(move.Current, move.Next, by, move.Reason);
            return moved is null && outcome is not StepOutcome.Retry ? StepOutcome.Moved.Instance : outcome;
        }
        catch (Exception storeError) when (current.State == EditState.Submitting)
        {
            unwritten.Keep(move, by);
            return new StepOutcome.Retry(new InvalidOperationException($"{error.Message}; the store is away too, so what the submit learned is written when it answers", storeError));
        }
    }

    /// <summary>
    /// The request id in hand is what spares a second paid submit: a store that is away is tried a few times, then the
    /// move is kept in the process and written when the store answers (the edit's next step looks there first).
    /// </summary>
    private async Task<StepOutcome> StoreAcceptedAsync(EditMove move, string by)
    {
        var accepted = move.Next;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var stored = await changer.MoveAsync(move.Current, accepted, by, move.Reason);
                if (stored is null)
                {
                    LogAcceptedButMoved(accepted.Id, accepted.RequestId!);
                    return StepOutcome.Moved.Instance;
                }

                return new StepOutcome.AtProvider(accepted.RequestId!, accepted.Provider, accepted.SubmittedAt!.Value, accepted.DueAt);
            }
            catch (Exception ex) when (attempt < StoreAttempts)
            {
                LogStoreRetry(ex, accepted.Id, accepted.RequestId!, attempt);
                await Task.Delay(StoreRetryDelay * attempt, time, CancellationToken.None);
            }
            catch (Exception ex)
            {
                unwritten.Keep(move, by);
                return new StepOutcome.Retry(new InvalidOperationException(
                    $"the provider accepted the submit as {accepted.RequestId}, but the store is away; it is written when the store answers", ex));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId} was accepted as {RequestId} but storing it failed (try {Attempt}); trying again")]
    private partial void LogStoreRetry(Exception ex, long editId, string requestId, int attempt);

    [LoggerMessage(Level = LogLevel.Error, Message = "Edit {EditId} was accepted as {RequestId} but someone else moved it first; the provider may run it twice")]
    private partial void LogAcceptedButMoved(long editId, string requestId);
}

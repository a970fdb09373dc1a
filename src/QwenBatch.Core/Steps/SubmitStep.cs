using System.Globalization;
using Microsoft.Extensions.Logging;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.Steps;

/// <summary>pending → submitting → at_provider: sends the job to its provider and records the request id at once.</summary>
public sealed partial class SubmitStep(
    EditStateChanger changer,
    IJobStore store,
    ProviderRegistry providers,
    EditRequestBuilder requests,
    PollSchedule schedule,
    LatencyModel latency,
    TimeProvider time,
    ILogger<SubmitStep> logger) : IJobStep
{
    /// <summary>Tries to store an accepted request id while the store is away, before treating the submit as uncertain.</summary>
    internal const int StoreAttempts = 10;

    /// <summary>Wait before the second try to store a request id; grows linearly (about 27 s over all tries).</summary>
    internal static readonly TimeSpan StoreRetryDelay = TimeSpan.FromMilliseconds(500);

    public bool CanRun(EditRecord job) => job.State == EditState.Pending;

    public async Task RunAsync(StepContext context, CancellationToken ct)
    {
        var job = context.Current;
        var account = providers.Get(job.Provider);
        var provider = account.Client;
        var request = await requests.BuildAsync(job.Spec, ct);

        // Reserve the most this task can cost before sending it, so neither the batch budget nor the account's daily
        // budget is ever exceeded. Checkpoint: from the move to 'submitting' until the request id is stored the provider may
        // accept a task we cannot see. A crash in this window leaves the job in 'submitting'; the rescuer counts it as an
        // uncertain submit before trying again.
        var maxCost = job.Spec.N * account.Options.PricePerImage;
        var submitting = account.Options.DailyBudgetUsd is null
            // One write: the move's guard refuses a reservation the batch budget cannot hold.
            ? await changer.MoveAsync(job, job with { State = EditState.Submitting, ReservedUsd = maxCost }, context.Owner, reason: null, keepLease: true)
            : null;
        if (submitting is null)
        {
            // The exact verdict, from the one place reservations are decided: with a daily budget always (it needs the
            // account's day locked), otherwise only when the move above missed (over the batch budget, or no longer ours).
            var verdict = await store.TryReserveBudgetAsync(new BudgetReservation(job.Id, context.Owner, maxCost, account.Options.DailyBudgetUsd), ct);
            switch (verdict.Refusal)
            {
                case BudgetRefusal.NotLeased:
                    return;
                case BudgetRefusal.BatchBudget:
                    await HoldAsync(context, maxCost, ct);
                    return;
                case BudgetRefusal.DailyBudget:
                    await HoldForTheDayAsync(context, account, maxCost, verdict);
                    return;
            }

            job = job with { ReservedUsd = maxCost };
            submitting = await changer.MoveAsync(job, job with { State = EditState.Submitting }, context.Owner, reason: null, keepLease: true);
            if (submitting is null)
            {
                return;
            }
        }

        context.Current = submitting;
        var accepted = await provider.SubmitAsync(request, ct);

        // Persist the request id before anything else: it is what prevents a second paid submit after a crash.
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
            DueAt = now + schedule.First(latency.Expected(LatencyModel.Key(job.Provider, job.Spec.N, job.Spec.Size))),
        };
        var stored = await StoreAcceptedAsync(context, submitting, atProvider, ct);
        if (stored is null)
        {
            LogAcceptedButNotRecorded(job.Id, accepted.RequestId);
        }
    }

    /// <summary>
    /// The request id in hand is what spares a second paid submit, so a store that is away (a database restart) is
    /// waited for, a while, before the failure goes to the runner, which counts the submit as uncertain.
    /// </summary>
    private async Task<EditRecord?> StoreAcceptedAsync(StepContext context, EditRecord submitting, EditRecord atProvider, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await changer.MoveAsync(submitting, atProvider, context.Owner, $"accepted as {atProvider.RequestId}");
            }
            catch (Exception ex) when (attempt < StoreAttempts && !ct.IsCancellationRequested)
            {
                LogStoreRetry(ex, submitting.Id, atProvider.RequestId!, attempt);
                await Task.Delay(StoreRetryDelay * attempt, time, ct);
            }
        }
    }

    private async Task HoldAsync(StepContext context, decimal maxCost, CancellationToken ct)
    {
        var job = context.Current;
        var batch = await store.GetBatchAsync(job.BatchId, ct);
        var why = string.Create(CultureInfo.InvariantCulture,
            $"held: the batch budget of ${batch?.BudgetUsd:0.00##} would be exceeded (spent ${batch?.SpentUsd:0.00##}, reserved ${batch?.ReservedUsd:0.00##}, this job needs up to ${maxCost:0.00##}); raise it with --budget");
        LogHeld(job.Id, why);
        await changer.MoveAsync(job, job with { State = EditState.Held, Error = why }, context.Owner, why);
    }

    private async Task HoldForTheDayAsync(StepContext context, ProviderAccount account, decimal maxCost, BudgetVerdict verdict)
    {
        var job = context.Current;
        var why = DailyHoldReason(account, maxCost, verdict);
        LogHeld(job.Id, why);
        await changer.MoveAsync(job, job with { State = EditState.Held, Error = why }, context.Owner, why);
    }

    /// <summary>Names the provider, the cap, what is spent and reserved today, and when the job resumes.</summary>
    internal static string DailyHoldReason(ProviderAccount account, decimal maxCost, BudgetVerdict verdict) => string.Create(CultureInfo.InvariantCulture,
        $"held: the {account.Name} daily budget of ${account.Options.DailyBudgetUsd:0.00##} would be exceeded on {verdict.Day:yyyy-MM-dd} (UTC) (spent today ${verdict.DaySpentUsd:0.00##}, reserved ${verdict.DayReservedUsd:0.00##}, this job needs up to ${maxCost:0.00##}); it resumes by itself after 00:00 UTC or when DailyBudgetUsd is raised");

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} was accepted as {RequestId} but storing it failed (try {Attempt}); trying again")]
    private partial void LogStoreRetry(Exception ex, long jobId, string requestId, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} {Reason}")]
    private partial void LogHeld(long jobId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId} was accepted as {RequestId} but another worker took it over first; the provider may run it twice")]
    private partial void LogAcceptedButNotRecorded(long jobId, string requestId);
}

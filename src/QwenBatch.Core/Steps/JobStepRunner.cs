using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Server;

namespace QwenBatch.Steps;

/// <summary>Runs the step for a claimed job and turns a failed step into a retry with backoff, or a failure.</summary>
public sealed partial class JobStepRunner
{
    private readonly IReadOnlyList<IJobStep> _steps;
    private readonly EditStateChanger _changer;
    private readonly WorkerOptions _options;
    private readonly TimeProvider _time;
    private readonly Func<double> _random;
    private readonly ILogger<JobStepRunner> _logger;

    public JobStepRunner(IEnumerable<IJobStep> steps, EditStateChanger changer, WorkerOptions options, TimeProvider time, Func<double> random, ILogger<JobStepRunner> logger)
    {
        _steps = steps.ToList();
        _changer = changer;
        _options = options;
        _time = time;
        _random = random;
        _logger = logger;
    }

    /// <summary>
    /// Runs the job's step, then, while a step hands the job on still leased and due at once (a completion seen → its
    /// download), the next one, without giving the lease back in between. Never throws for a failed step; an abandoned
    /// step (stop) leaves the job to lease release.
    /// </summary>
    public async Task RunAsync(EditRecord job, string owner, CancellationToken ct)
    {
        // Every event of the step (steps, provider clients, resilience, limiter) carries the job and its batch.
        using var scope = _logger.BeginScope(new Dictionary<string, object> { ["BatchId"] = job.BatchId, ["JobId"] = job.Id });
        var context = new StepContext(owner, job);
        while (true)
        {
            try
            {
                var step = _steps.SingleOrDefault(s => s.CanRun(context.Current))
                    ?? throw new InvalidOperationException($"No step handles jobs in state {context.Current.State}.");

                await step.RunAsync(context, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                LogAbandoned(context.Current.Id, context.Current.State);
                await WriteUnwrittenAsync(context);
                return;
            }
            catch (Exception ex)
            {
                await RecordFailureUntilStoredAsync(context, ex, ct);
                return;
            }

            // A stop leaves a handed-on job leased to us; the stop gives every lease back.
            if (context.Next is null || ct.IsCancellationRequested)
            {
                await WriteUnwrittenAsync(context);
                return;
            }

            context = context.ForNext();
        }
    }

    /// <summary>
    /// A move handed on unwritten whose next step will not run now (a stop): written and the job given back, so what the
    /// step learned (a completion, its charge) is kept rather than asked of the provider again. If even that fails, the
    /// job stays in its stored state and its step runs again later.
    /// </summary>
    private async Task WriteUnwrittenAsync(StepContext context)
    {
        if (context.Unwritten is null)
        {
            return;
        }

        try
        {
            await context.MoveAsync(_changer, context.Current, reason: null);
        }
        catch (Exception ex)
        {
            LogUnwrittenLost(ex, context.Current.Id, context.Unwritten.From);
        }
    }

    /// <summary>
    /// Records the failed step, retrying while the store itself is away (a database restart). Giving up here would leave
    /// the job leased to this live server, whose heartbeat renews the lease: nobody would ever run the job again.
    /// </summary>
    private async Task RecordFailureUntilStoredAsync(StepContext context, Exception error, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await RecordFailureAsync(context, error);
                return;
            }
            catch (Exception storeError) when (!ct.IsCancellationRequested)
            {
                var delay = Backoff.Delay(attempt, _options.RetryBaseDelay, _options.FallbackPollInterval, _random());
                LogRecordFailed(storeError, context.Current.Id, delay);
                try
                {
                    await Task.Delay(delay, _time, ct);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: the lease is released on shutdown, or expires once the heartbeat stops.
                    LogAbandoned(context.Current.Id, context.Current.State);
                    return;
                }
            }
        }
    }

    private async Task RecordFailureAsync(StepContext context, Exception error)
    {
        var job = context.Current;
        if (error is ProviderException { Kind: ProviderErrorKind.Throttled } throttled)
        {
            // Nothing was sent: the job waits for the shared allowance without spending an attempt.
            var wait = throttled.RetryAfter ?? _options.FirstPollDelay;
            await context.MoveAsync(_changer, job with { State = job.State == EditState.Submitting ? EditState.Pending : job.State, DueAt = _time.GetUtcNow() + wait },
                reason: null);
            return;
        }

        var message = error is ProviderException or EditInputException ? error.Message : $"{error.GetType().Name}: {error.Message}";
        if (error is ProviderException { Kind: ProviderErrorKind.Unavailable } unavailable)
        {
            await WaitForProviderAsync(context, unavailable);
            return;
        }

        // In 'submitting' only a provider's clear "not accepted" is certain; anything else (an uncertain answer, or the
        // store failing to record an accepted submit) may have left a paid task behind.
        var uncertain = job.State == EditState.Submitting
            && error is not ProviderException { Kind: not ProviderErrorKind.Uncertain };
        var attempt = job.Attempt + 1;

        // A submit whose outcome is unknown is counted where the report can show it; it is then retried like any other
        // failure, openly, rather than silently.
        var failed = job with
        {
            Attempt = attempt,
            Error = message,
            UncertainSubmits = job.UncertainSubmits + (uncertain ? 1 : 0),
        };

        var rejected = error is ProviderException { Kind: ProviderErrorKind.Rejected } || error is EditInputException;
        if (rejected || attempt >= _options.MaxAttempts)
        {
            LogFailed(job.Id, attempt, message);
            await context.MoveAsync(_changer, failed with { State = EditState.Failed, FinishedAt = _time.GetUtcNow() },
                rejected ? $"rejected: {message}" : $"gave up after {attempt} attempts: {message}");
            return;
        }

        var delay = Backoff.Delay(attempt, _options.RetryBaseDelay, _options.RetryMaxDelay, _random());
        if (error is ProviderException { RetryAfter: { } retryAfter } && retryAfter > delay)
        {
            delay = retryAfter;
        }

        var retryState = job.State == EditState.Submitting ? EditState.Pending : job.State;
        LogRetrying(job.Id, attempt, delay, message);
        await context.MoveAsync(_changer, failed with { State = retryState, DueAt = _time.GetUtcNow() + delay },
            $"attempt {attempt} failed{(uncertain ? " (the provider may have accepted the submit)" : "")}: {message}");
    }

    /// <summary>
    /// The provider's circuit is open, so nothing was sent: the job waits out the break (plus jitter, so a batch does not
    /// rush back at once) without spending an attempt. An outage of any length delays a batch; it does not fail it.
    /// </summary>
    private async Task WaitForProviderAsync(StepContext context, ProviderException error)
    {
        var job = context.Current;
        var wait = (error.RetryAfter is { } after && after > TimeSpan.Zero ? after : _options.RetryBaseDelay)
            + (_options.RetryBaseDelay * _random());
        var state = job.State == EditState.Submitting ? EditState.Pending : job.State;
        LogWaiting(job.Id, wait, error.Message);
        await context.MoveAsync(_changer, job with { State = state, Error = error.Message, DueAt = _time.GetUtcNow() + wait },
            $"provider unavailable, waiting {wait.TotalSeconds:0.#} s: {error.Message}");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} waits {Delay} for its provider: {Error}")]
    private partial void LogWaiting(long jobId, TimeSpan delay, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: recording what its step learned failed on shutdown; it stays {State} and that step runs again")]
    private partial void LogUnwrittenLost(Exception ex, long jobId, EditState state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: recording the failed step failed; trying again in {Delay}")]
    private partial void LogRecordFailed(Exception ex, long jobId, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId} step abandoned in {State} on shutdown; its lease is released")]
    private partial void LogAbandoned(long jobId, EditState state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} attempt {Attempt} failed, retrying in {Delay}: {Error}")]
    private partial void LogRetrying(long jobId, int attempt, TimeSpan delay, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId} failed after {Attempt} attempts: {Error}")]
    private partial void LogFailed(long jobId, int attempt, string error);
}

/// <summary>The job's own input is unusable (a missing image file, for example): retrying will not help.</summary>
public sealed class EditInputException : Exception
{
    public EditInputException()
    {
    }

    public EditInputException(string message)
        : base(message)
    {
    }

    public EditInputException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

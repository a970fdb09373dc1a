using Hangfire;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Server;

namespace QwenBatch.Hangfire.Filters;

/// <summary>
/// Hangfire's own retry filter, set to QwenBatch's backoff: <c>Worker:MaxAttempts</c> attempts of a step, the delay
/// doubling from <c>Worker:RetryBaseDelay</c> up to <c>Worker:RetryMaxDelay</c> with jitter. An edit that failed for good
/// (<see cref="EditFailedException"/>), or a schedule's occurrence whose manifest failed, is not retried; one whose retries are spent ends failed (and so does its edit).
/// </summary>
public static class EditRetry
{
    public static AutomaticRetryAttribute Create(WorkerOptions options, Func<double> random) => new()
    {
        Attempts = options.MaxAttempts - 1,
        DelayInSecondsByAttemptFunc = attempt => (int)Math.Ceiling(
            Backoff.Delay((int)Math.Min(attempt, int.MaxValue), options.RetryBaseDelay, options.RetryMaxDelay, random()).TotalSeconds),
        ExceptOn = [typeof(EditFailedException), typeof(Schedules.ScheduleFailedException)],
        OnAttemptsExceeded = AttemptsExceededAction.Fail,
        LogEvents = false,
    };
}

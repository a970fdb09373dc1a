using QwenBatch.Server;

namespace QwenBatch.FlowControl;

/// <summary>
/// When to look at a task again. Before its expected completion: at the expected completion. After it: every tenth of
/// the time it has taken so far (so completion is noticed at most ~10% late), never more often than the first poll
/// delay nor less often than the max interval. Without an estimate: grow by half from the first poll delay. ±10% jitter
/// spreads the polls of a batch.
/// </summary>
public sealed class PollSchedule(WorkerOptions options, Func<double> random)
{
    public const double LateFraction = 0.1;

    /// <summary>The first poll after a submit.</summary>
    public TimeSpan First(TimeSpan? expected) => Jitter(Clamp(expected ?? options.FirstPollDelay));

    /// <param name="elapsed">Time since the submit was accepted.</param>
    /// <param name="polls">Polls made so far.</param>
    /// <param name="expected">Learned latency of similar tasks, if any.</param>
    public TimeSpan Next(TimeSpan elapsed, int polls, TimeSpan? expected)
    {
        if (expected is { } e && elapsed < e)
        {
            return Jitter(Clamp(e - elapsed));
        }

        if (expected is not null)
        {
            return Jitter(LateGap(elapsed));
        }

        return Jitter(ProbeGap(polls));
    }

    /// <summary>The gap between polls once a task is late: a tenth of its age, within the bounds.</summary>
    public TimeSpan LateGap(TimeSpan elapsed) => Clamp(elapsed * LateFraction);

    /// <summary>
    /// The gap (without jitter) this schedule left before a poll due <paramref name="dueElapsed"/> after the submit, after
    /// <paramref name="polls"/> earlier polls of the task: how long the task may have been finished unseen. While nothing
    /// was learned the gaps are the probing ones (×1.5 each); the model may have learned from other tasks meanwhile, so a
    /// due time on the probing series (within the jitter) counts as probing. Otherwise the late gap.
    /// </summary>
    public TimeSpan GapBefore(TimeSpan dueElapsed, int polls, TimeSpan? expected)
    {
        if (polls <= 0)
        {
            return dueElapsed;
        }

        var probingDue = TimeSpan.Zero;
        for (var i = 0; i <= polls && i <= 40; i++)
        {
            probingDue += ProbeGap(i);
        }

        var onProbingSeries = Math.Abs((dueElapsed - probingDue).Ticks) <= probingDue.Ticks * 0.12;
        return expected is null || onProbingSeries ? ProbeGap(polls) : LateGap(dueElapsed);
    }

    private TimeSpan ProbeGap(int polls) => Clamp(options.FirstPollDelay * Math.Pow(1.5, Math.Min(polls, 40)));

    private TimeSpan Clamp(TimeSpan delay) =>
        delay < options.FirstPollDelay ? options.FirstPollDelay : delay > options.MaxPollInterval ? options.MaxPollInterval : delay;

    private TimeSpan Jitter(TimeSpan delay) => delay * (0.9 + (0.2 * random()));
}

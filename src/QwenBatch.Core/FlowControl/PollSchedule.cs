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

    /// <summary>
    /// The first look at a task whose provider will post its end: that poll is the fallback for a lost delivery, due a
    /// quarter past the expected completion plus <paramref name="margin"/> (without an estimate, the max interval plus it).
    /// </summary>
    public TimeSpan FirstAwaitingWebhook(TimeSpan? expected, TimeSpan margin) => Jitter(expected is { } e ? e * 1.25 : options.MaxPollInterval) + margin;

    /// <summary>After a fallback poll found the task unfinished: as <see cref="Next"/>, but never sooner than the margin.</summary>
    public TimeSpan NextAwaitingWebhook(TimeSpan elapsed, int polls, TimeSpan? expected, TimeSpan margin)
    {
        var next = Next(elapsed, polls, expected);
        return next > margin ? next : margin;
    }

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
    /// How long a task seen finished by a poll due <paramref name="dueElapsed"/> after the submit, after
    /// <paramref name="polls"/> earlier polls, may have been finished unseen: the gap the schedule left before that poll
    /// (without jitter). While nothing was learned that is the probing gap (×1.5 each). Once something is, the task may
    /// still have been probed before the model learned from another one, and due times carry each earlier poll's own
    /// delay, so which gap it was cannot be told apart: the larger of the probing and late gaps is taken, which errs
    /// towards an earlier estimate (an extra call) rather than a later one (lag).
    /// </summary>
    public TimeSpan GapBefore(TimeSpan dueElapsed, int polls, TimeSpan? expected)
    {
        if (polls <= 0)
        {
            return dueElapsed;
        }

        var probing = ProbeGap(polls);
        if (expected is null)
        {
            return probing;
        }

        var late = LateGap(dueElapsed);
        return probing > late ? probing : late;
    }

    /// <summary>
    /// Whether a poll answered <paramref name="late"/> after it was due still says when the task finished: within twice
    /// the first poll delay or half the time it was due after the submit. A poll that waited much longer (for the request
    /// allowance of a request-bound run, for a busy machine) may have found a task finished long before it was due, and
    /// learning its due time would teach a far too early first poll.
    /// </summary>
    public bool RanOnTime(TimeSpan dueElapsed, TimeSpan late)
    {
        var slack = options.FirstPollDelay * 2;
        return late <= (dueElapsed / 2 > slack ? dueElapsed / 2 : slack);
    }

    private TimeSpan ProbeGap(int polls) => Clamp(options.FirstPollDelay * Math.Pow(1.5, Math.Min(polls, 40)));

    private TimeSpan Clamp(TimeSpan delay) =>
        delay < options.FirstPollDelay ? options.FirstPollDelay : delay > options.MaxPollInterval ? options.MaxPollInterval : delay;

    private TimeSpan Jitter(TimeSpan delay) => delay * (0.9 + (0.2 * random()));
}

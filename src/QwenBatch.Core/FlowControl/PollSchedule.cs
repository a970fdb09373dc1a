using QwenBatch.Server;

namespace QwenBatch.FlowControl;

/// <summary>
/// When to look at a task again. Before its expected completion: at the expected completion. After it, or when nothing
/// is expected: every tenth of the time it has taken so far (so completion is noticed at most ~10% late), never more
/// often than the first poll delay nor less often than the max interval. ±10% jitter spreads the polls of a batch.
/// </summary>
/// <remarks>
/// A key nothing is known of is not probed by every edit of a wave: a few scouts (<see cref="LatencyScouts"/>) poll from
/// the first poll delay on the late gap, the others are <see cref="Parked"/> until the scouts' first completion pulls
/// them forward (<see cref="WaveLessons"/>): what one completion tells the whole wave is not paid for by every edit.
/// </remarks>
public sealed class PollSchedule(WorkerOptions options, Func<double> random)
{
    public const double LateFraction = 0.1;

    /// <summary>How far <see cref="Jitter"/> moves a delay either way.</summary>
    internal const double JitterFraction = 0.1;

    /// <summary>The first poll after a submit: at the expected latency, or after the first poll delay (a scout's).</summary>
    public TimeSpan First(TimeSpan? expected) => Jitter(Clamp(expected ?? options.FirstPollDelay));

    /// <summary>
    /// The first look at a task whose provider will post its end: that poll is the fallback for a lost delivery, due a
    /// quarter past the expected completion (learned, or the provider's prior) plus <paramref name="margin"/>; with
    /// neither, the max interval plus it. No scouts probe such a wave: the deliveries teach the latency as it is.
    /// </summary>
    public TimeSpan FirstAwaitingWebhook(TimeSpan? expected, TimeSpan margin) => Jitter(expected is { } e ? e * 1.25 : options.MaxPollInterval) + margin;

    /// <summary>After a fallback poll found the task unfinished: as <see cref="Next"/>, but never sooner than the margin.</summary>
    public TimeSpan NextAwaitingWebhook(TimeSpan elapsed, TimeSpan? expected, TimeSpan margin)
    {
        var next = Next(elapsed, expected);
        return next > margin ? next : margin;
    }

    /// <summary>
    /// The first poll of an edit of a wave that nothing was learned of and that is no scout: at the provider's configured
    /// prior, or at the max interval. Either is a fallback: the wave's first completion pulls it forward.
    /// </summary>
    public TimeSpan Parked(TimeSpan? prior) => Jitter(Clamp(prior ?? options.MaxPollInterval));

    /// <param name="elapsed">Time since the submit was accepted.</param>
    /// <param name="expected">Learned latency of similar tasks, if any.</param>
    public TimeSpan Next(TimeSpan elapsed, TimeSpan? expected) =>
        expected is { } e && elapsed < e ? Jitter(Clamp(e - elapsed)) : Jitter(LateGap(elapsed));

    /// <summary>The gap between polls once a task is late (or nothing is expected): a tenth of its age, within the bounds.</summary>
    public TimeSpan LateGap(TimeSpan elapsed) => Clamp(elapsed * LateFraction);

    /// <summary>
    /// How long a task seen finished by a poll due <paramref name="dueElapsed"/> after the submit, after
    /// <paramref name="polls"/> earlier polls, may have been finished unseen: the gap the schedule left before that poll
    /// (without jitter). Every gap after a first poll is the late gap, known or not.
    /// </summary>
    public TimeSpan GapBefore(TimeSpan dueElapsed, int polls) => polls <= 0 ? dueElapsed : LateGap(dueElapsed);

    /// <summary>
    /// Whether a completion seen by a poll says closely enough when the task finished to learn its latency from. A later
    /// poll does (within its gap), and a first poll at a learned estimate does (it nudges it). A first poll of a key
    /// nothing is known of does only when it came at the first poll delay (a scout's): a parked edit's first poll, at the
    /// prior or the max interval or where a lesson put it, says only that the task took at most that long, and learning
    /// it would teach the parking time.
    /// </summary>
    public bool Measures(TimeSpan dueElapsed, int polls, TimeSpan? expected) =>
        polls > 0 || expected is not null || dueElapsed <= options.FirstPollDelay * (1 + JitterFraction);

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

    private TimeSpan Clamp(TimeSpan delay) =>
        delay < options.FirstPollDelay ? options.FirstPollDelay : delay > options.MaxPollInterval ? options.MaxPollInterval : delay;

    private TimeSpan Jitter(TimeSpan delay) => delay * (1 - JitterFraction + (2 * JitterFraction * random()));
}

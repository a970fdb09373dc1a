using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Server;

/// <summary>
/// How a process works on edits beside its Hangfire server: retries, polling, feeding; the <c>Worker</c> configuration
/// section. How many Hangfire workers run, and how Hangfire's storage behaves, is the <c>Hangfire</c> section.
/// </summary>
public sealed class WorkerOptions
{
    public const string SectionName = "Worker";
    public const int DefaultMaxAttempts = 5;
    public const int DefaultMaxProviderResubmits = 2;

    /// <summary>Attempts of one step (a submit, a download, the polls of one task) before the edit fails; Hangfire retries the steps.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = DefaultMaxAttempts;

    /// <summary>First retry delay; doubles per attempt, with jitter, up to <see cref="RetryMaxDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(2);

    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Tasks the provider reported failed are submitted again this many times before the edit fails.</summary>
    [Range(0, 20)]
    public int MaxProviderResubmits { get; set; } = DefaultMaxProviderResubmits;

    /// <summary>First status poll after a submit, before anything is learned about the provider's latency.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan FirstPollDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between two polls of one task.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Status calls one process has on their way at once (they hold no Hangfire worker).</summary>
    [Range(1, 10000)]
    public int PollConcurrency { get; set; } = 64;

    /// <summary>
    /// How often an idle process looks in the store for work other processes made (a new batch, a poll due): one small
    /// statement each time. Work this process makes wakes it at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan FallbackPollInterval { get; set; } = TimeSpan.FromSeconds(1.5);

    /// <summary>
    /// Edits the fleet keeps queued in Hangfire per Hangfire worker: enough that no worker waits for the feeder, few
    /// enough that the backlog stays in QwenBatch's tables (and a cancel or a budget still reaches it).
    /// </summary>
    [Range(1, 100)]
    public double QueuedPerWorker { get; set; } = 2;

    /// <summary>How often a process saves the task latencies it learned to the store and reads the fleet's.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan LatencySyncInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A file touched whenever the process reached the store (for container healthchecks); none when empty.</summary>
    public string? HeartbeatFile { get; set; }

    /// <summary>A task still at the provider after this long is cancelled there and the edit fails with the reason.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan JobTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>On stop, how long steps under way get to record their results before they are cancelled.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(10);
}

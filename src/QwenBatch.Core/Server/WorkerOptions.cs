using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Server;

/// <summary>How a worker process runs jobs; the <c>Worker</c> configuration section.</summary>
public sealed class WorkerOptions
{
    public const string SectionName = "Worker";
    public const int DefaultConcurrency = 16;
    public const int DefaultMaxAttempts = 5;
    public const int DefaultMaxProviderResubmits = 2;

    /// <summary>
    /// Steps this process runs at once. Steps are short HTTP calls, so this is not a thread count. A step that only waits
    /// for the write giving its job back does not count (up to as many again), so a slot does not idle on the database.
    /// </summary>
    [Range(1, 1000)]
    public int Concurrency { get; set; } = DefaultConcurrency;

    /// <summary>How long a claimed job stays ours without a heartbeat; the rescuer frees it after that.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "01:00:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the process records it is alive and extends its leases; well under <see cref="LeaseDuration"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often this process looks for expired leases of crashed workers.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan RescueInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The slow poll that finds work when no notification arrives (a missed NOTIFY, SQLite in another process).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan FallbackPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Failed attempts of one step before the job fails.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = DefaultMaxAttempts;

    /// <summary>First retry delay; doubles per attempt, with jitter, up to <see cref="RetryMaxDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(2);

    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Tasks the provider reported failed are submitted again this many times before the job fails.</summary>
    [Range(0, 20)]
    public int MaxProviderResubmits { get; set; } = DefaultMaxProviderResubmits;

    /// <summary>First status poll after a submit.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan FirstPollDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between two polls of one task.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a process saves the task latencies it learned to the store and reads the fleet's.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan LatencySyncInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A file touched after every successful heartbeat (for container healthchecks); none when empty.</summary>
    public string? HeartbeatFile { get; set; }

    /// <summary>A task still at the provider after this long is cancelled there and the job fails with the reason.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan JobTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>On stop, how long in-flight steps get to record their results before they are cut off.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(10);
}

using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// How Hangfire runs QwenBatch's edits: the <c>Hangfire</c> configuration section, validated at start. The defaults are
/// chosen for this work (README, "Hangfire"): every step is short and no worker waits on a provider or a limiter, so a few
/// workers go far, and a killed worker's edits must continue elsewhere within about a minute.
/// </summary>
public sealed class HangfireOptions
{
    public const string SectionName = "Hangfire";

    /// <summary>Hangfire workers in this process. Each runs one short step at a time (a submit, a download).</summary>
    [Range(1, 1000)]
    public int WorkerCount { get; set; } = 8;

    /// <summary>The queue QwenBatch's jobs go to and its servers fetch from, apart from any other Hangfire work in the same storage.</summary>
    [Required]
    [RegularExpression("^[a-z0-9_-]+$", ErrorMessage = "The field Queue must be lowercase letters, digits, '_' or '-'.")]
    public string Queue { get; set; } = "qwenbatch";

    /// <summary>Hangfire.PostgreSql's schema, beside QwenBatch's tables in the same database.</summary>
    [Required]
    public string SchemaName { get; set; } = "hangfire";

    /// <summary>
    /// How long a fetched job stays invisible to other workers. Sliding: the worker that runs it keeps renewing it, so a
    /// long step is never run twice at once; a killed worker stops renewing, and its jobs run elsewhere after this.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:15", "01:00:00")]
    public TimeSpan InvisibilityTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How often an idle worker asks PostgreSQL for a job. The feeder enqueues in the process whose workers run the edits,
    /// which wakes them at once, so this only bounds how soon a job enqueued elsewhere (a dashboard requeue) is noticed.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan QueuePollInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long a distributed lock row of a dead holder blocks its resource. Hangfire takes a job's lock for every state
    /// change (milliseconds) and the schedulers' locks for one pass; a holder killed mid-change blocks that job this long.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:10", "01:00:00")]
    public TimeSpan DistributedLockTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How often scheduled jobs (Hangfire's retries) and recurring jobs (schedules) are looked at: their lateness at most.
    /// Each look takes and frees a lock row, for each of the two schedulers: shorter costs an idle server more.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan SchedulePollingInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often a server records that it is alive; a submitter silent for three of these is taken for gone.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>After this without a heartbeat a server is removed from Hangfire's servers list.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan ServerTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long finished Hangfire jobs (succeeded, deleted) stay in Hangfire's tables; QwenBatch's own tables keep the record
    /// the reports need (Retention:MaxAge). Failed jobs stay until requeued or deleted, as in Hangfire.
    /// </summary>
    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00")]
    public TimeSpan SucceededJobExpiration { get; set; } = TimeSpan.FromDays(1);
}

using QwenBatch.Outputs;

namespace QwenBatch.Edits;

/// <summary>One edit as stored: a manifest row after expansion (one provider request making 1–n images), plus where it stands.</summary>
public sealed record EditRecord
{
    public required long Id { get; init; }
    public required long BatchId { get; init; }

    /// <summary>The manifest id of the row (unique within its batch).</summary>
    public required string Key { get; init; }

    /// <summary>Hash of the row's content; a changed row is a new job.</summary>
    public required string ContentHash { get; init; }

    public required EditState State { get; init; }
    public required string Provider { get; init; }
    public required EditSpec Spec { get; init; }

    /// <summary>The provider's id for the accepted task; persisted before anything else happens after a submit.</summary>
    public string? RequestId { get; init; }

    /// <summary>Failed attempts of the current step (Hangfire retries it); reset when the edit moves on.</summary>
    public int Attempt { get; init; }

    /// <summary>Submits the provider accepted (each is billable when it completes).</summary>
    public int AcceptedSubmits { get; init; }

    /// <summary>Submits whose outcome is unknown (a crash or timeout after sending): the provider may have accepted them.</summary>
    public int UncertainSubmits { get; init; }

    /// <summary>Polls made for the current provider task; drives the polling schedule.</summary>
    public int Polls { get; init; }

    /// <summary>
    /// When the edit wants attention next: a pending edit is fed no earlier (a retry's backoff, a provider's Retry-After),
    /// an edit at the provider is polled then.
    /// </summary>
    public required DateTimeOffset DueAt { get; init; }

    /// <summary>The id of the Hangfire job that runs the edit's steps; null until the feeder hands it to Hangfire.</summary>
    public string? HangfireJob { get; init; }

    /// <summary>When the edit was last written (set by the store): how long a submit has been on its way, for one.</summary>
    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>Outputs the provider reported, waiting to be downloaded.</summary>
    public IReadOnlyList<ProviderOutput> Outputs { get; init; } = [];

    /// <summary>Files written into the batch folder (relative to it), with their SHA-256 and length.</summary>
    public IReadOnlyList<OutputFile> Files { get; init; } = [];

    /// <summary>What the provider charges for this job's completed task(s), settled when the provider reports completion.</summary>
    public decimal CostUsd { get; init; }

    /// <summary>The most this job's submitted task can cost, held against the batch budget until it is settled.</summary>
    public decimal ReservedUsd { get; init; }

    /// <summary>An operator asked to cancel; the poller (or the step under way) sends the cancel to the provider. Set only by the store.</summary>
    public bool CancelRequested { get; init; }
    public string? Error { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? SubmittedAt { get; init; }

    /// <summary>When a poll first saw the provider running (or finished) the task: the end of its queue wait.</summary>
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>
    /// 1 for the first job of its manifest id in the batch; each changed import of the row adds a job with the next
    /// revision, whose output files carry it (<c>-r2</c>) so they never mix with an older job's.
    /// </summary>
    public int Revision { get; init; } = 1;

    /// <summary>The job of the same manifest id this one replaced (its row changed since the previous import).</summary>
    public long? Replaces { get; init; }

    /// <summary>The newer job that replaced this one; null while this is the manifest id's current job.</summary>
    public long? SupersededBy { get; init; }
}

/// <summary>An output the provider produced: a URL to fetch or inline base64 data, and whether the provider flagged it NSFW.</summary>
public sealed record ProviderOutput(string? Url, string? Base64, string? ContentType, bool? HasNsfw = null);

/// <summary>One entry of an edit's state history; <paramref name="ServerId"/> is the Hangfire server (or process) that moved it.</summary>
public sealed record EditHistoryEntry(long EditId, DateTimeOffset At, EditState? From, EditState To, string? Reason, string? ServerId);

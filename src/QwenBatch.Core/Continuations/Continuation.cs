namespace QwenBatch.Continuations;

/// <summary>What follows a batch when it settles: another manifest to run, a webhook receiving the summary, or both.</summary>
public sealed record Continuation(string? Manifest, string? Webhook)
{
    public bool IsEmpty => Manifest is null && Webhook is null;
}

/// <summary>A settled batch whose continuation this worker claimed (once, cluster-wide) and must now fire.</summary>
public sealed record ClaimedContinuation(long BatchId, string BatchName, string Provider, string StorageDir, Continuation Then);

/// <summary>What a continuation claim asks for.</summary>
/// <param name="Limit">How many settled batches at most.</param>
/// <param name="Lease">How long the claim is the caller's alone; an unrecorded claim older than this may be claimed again.</param>
/// <param name="BatchId">Only this batch (the process that just ended it), or any.</param>
public sealed record ContinuationClaim(int Limit, TimeSpan Lease, long? BatchId = null);

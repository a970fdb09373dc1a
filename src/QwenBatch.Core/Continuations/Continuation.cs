namespace QwenBatch.Continuations;

/// <summary>What follows a batch when it settles: another manifest to run, a webhook receiving the summary, or both.</summary>
public sealed record Continuation(string? Manifest, string? Webhook)
{
    public bool IsEmpty => Manifest is null && Webhook is null;
}

/// <summary>A settled batch whose continuation this worker claimed (once, cluster-wide) and must now fire.</summary>
public sealed record ClaimedContinuation(long BatchId, string BatchName, string Provider, string StorageDir, Continuation Then);

namespace QwenBatch.Retention;

/// <summary>What one retention step did: jobs deleted, and the batch deleted when it was the last step for it.</summary>
public sealed record RetentionStep(int JobsDeleted, string? BatchDeleted, string? StorageDir)
{
    public bool DidWork => JobsDeleted > 0 || BatchDeleted is not null;
}

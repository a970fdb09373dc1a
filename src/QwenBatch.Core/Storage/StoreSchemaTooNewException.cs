namespace QwenBatch.Storage;

/// <summary>
/// The job store was migrated by a newer QwenBatch than this one. Its statements may rely on what the newer migrations
/// changed (migration 11 moved the batch counters from a trigger into the statements that move jobs), so an older process
/// must not work on it: every process sharing a database runs one version, upgraded together.
/// </summary>
public sealed class StoreSchemaTooNewException : IOException
{
    public StoreSchemaTooNewException(int found, int known)
        : base($"the job store's schema is at version {found}, newer than this QwenBatch knows (version {known}): a newer QwenBatch migrated it. "
            + "Run that version here too; every process sharing a database must run the same version.")
    {
        Found = found;
        Known = known;
    }

    public StoreSchemaTooNewException()
    {
    }

    public StoreSchemaTooNewException(string message)
        : base(message)
    {
    }

    public StoreSchemaTooNewException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>The schema version the store records.</summary>
    public int Found { get; }

    /// <summary>The newest version this build knows.</summary>
    public int Known { get; }
}

namespace QwenBatch.Storage;

/// <summary>
/// Everything QwenBatch keeps durably beside Hangfire's own tables, as one backend object (PostgreSQL or SQLite) that
/// serves every role. Consumers depend on the narrow role they need; all SQL lives behind these interfaces, and each
/// backend is proven by the same contract suite, role by role. "Now" comes from the store's injected
/// <see cref="TimeProvider"/>.
/// </summary>
public interface IStore : IStoreSchema, IBatchStore, IEditStore, IFlowControlStore, IReportReads, IContinuationStore, IRetentionStore, IScheduleStore, IUploadStore, IWebhookStore, IAsyncDisposable;

/// <summary>The schema: numbered migrations, applied under a lock so processes starting together do not race.</summary>
public interface IStoreSchema
{
    Task MigrateAsync(CancellationToken ct);

    /// <summary>The highest applied migration (for health checks); 0 on an empty database.</summary>
    Task<int> GetSchemaVersionAsync(CancellationToken ct);

    /// <summary>The highest migration this build knows: a database below it has migrations to apply.</summary>
    int LatestSchemaVersion { get; }
}

namespace QwenBatch.Storage.Tests;

/// <summary>
/// How the contract suites reach one backend: databases to test on, stores on them, and the raw access the migration
/// tests need (a database as an older build left it). One instance per test class instance.
/// </summary>
public abstract class StoreBackend
{
    /// <summary>A location (connection string, file) of an empty database with the schema applied.</summary>
    public abstract Task<string> CleanDatabaseAsync();

    /// <summary>A location of a brand-new database with no schema.</summary>
    public abstract Task<string> NewDatabaseAsync();

    public abstract IStore CreateStore(string location, TimeProvider time);

    /// <summary>Applies the migrations up to <paramref name="version"/> only.</summary>
    public abstract Task MigrateToAsync(string location, int version, TimeProvider time);

    /// <summary>Records a schema version in a database's migration table, as a newer build's migration would.</summary>
    public abstract Task RecordSchemaVersionAsync(string location, int version);

    /// <summary>
    /// Writes, into a database at migration 12, what the engine before Hangfire left in flight (<see cref="LegacyRows"/>):
    /// batch <c>legacy</c> (budget $1, $0.10 reserved) with an edit leased in submitting (key <c>submitting</c>, $0.04
    /// reserved, lease held by <see cref="LegacyRows.Engine"/>), one leased at the provider (<c>at-provider</c>, request
    /// <c>req-7</c>, due <paramref name="at"/> + 30 s, $0.02 reserved) and one leased in pending that had reserved before
    /// its submit (<c>pending</c>, $0.04), all due and written at <paramref name="at"/> (but the one at the provider); a
    /// registered server; an hourly outcome; a schedule with its next occurrence, one finished occurrence and one claimed
    /// and never finished.
    /// </summary>
    public abstract Task SeedLegacyAsync(string location, DateTimeOffset at);

    /// <summary>A table's columns, by name; empty when there is no such table.</summary>
    public abstract Task<IReadOnlyList<string>> ColumnsAsync(string location, string table);

    /// <summary>Removes what the backend made, once every store is disposed.</summary>
    public virtual Task CleanUpAsync() => Task.CompletedTask;
}

/// <summary>What <see cref="StoreBackend.SeedLegacyAsync"/> writes, named for the checks.</summary>
public static class LegacyRows
{
    public const string Batch = "legacy";
    public const string Engine = "old-engine:4711";
    public const string Schedule = "nightly";
    public static readonly TimeSpan ProviderDue = TimeSpan.FromSeconds(30);

    /// <summary>The finished occurrence (the day before) and the claimed one (at the seed time), relative to the seed time.</summary>
    public static readonly TimeSpan FinishedOccurrence = TimeSpan.FromDays(-1);
}

using QwenBatch.Storage.Sqlite;

namespace QwenBatch.Storage.Tests.Sqlite;

/// <summary>The store contract on SQLite: a fresh file per test, deleted afterwards.</summary>
public sealed class SqliteJobStoreTests : JobStoreContract
{
    private readonly string _folder = Directory.CreateTempSubdirectory("qwenbatch-sqlite-").FullName;

    protected override bool SignalsAcrossInstances => false;

    protected override bool PulsesWhenListening => false;

    protected override async Task<string> CleanDatabaseAsync()
    {
        var path = await NewDatabaseAsync();
        await using var store = CreateStore(path, TimeProvider.System);
        await store.MigrateAsync(Ct);
        return path;
    }

    protected override Task<string> NewDatabaseAsync() => Task.FromResult(Path.Combine(_folder, $"{Guid.NewGuid():N}.db"));

    protected override IJobStore CreateStore(string location, TimeProvider time) => new SqliteJobStore(location, time);

    protected override async Task RecordSchemaVersionAsync(string location, int version)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={location};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($v, 'from a newer build', 0)";
        command.Parameters.AddWithValue("$v", version);
        await command.ExecuteNonQueryAsync();
    }

    protected override Task CleanUpAsync()
    {
        // The stores are disposed (their pools cleared), so the files are closed.
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }
}

using Npgsql;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>The schema: numbered migrations (PostgresMigrations), applied in one transaction under an advisory lock.</summary>
public sealed partial class PostgresStore
{
    public int LatestSchemaVersion => PostgresMigrations.All[^1].Version;

    public Task MigrateAsync(CancellationToken ct) => MigrateAsync(LatestSchemaVersion, ct);

    /// <summary>
    /// Applies the migrations up to <paramref name="version"/> and no further: a test builds a database as an older build
    /// left it, then migrates it the rest of the way.
    /// </summary>
    internal async Task MigrateAsync(int version, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        // A short statement_timeout meant for the workers' ordinary statements (connection string Options) must not fail a
        // start: waiting here for another process's migration, or migrating a big table, legitimately takes longer.
        await ExecuteAsync(connection, "SET LOCAL statement_timeout = 0", ct);
        await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({PostgresMigrations.AdvisoryLockKey})", ct);
        await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)", ct);
        await using var current = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM schema_migrations", connection);
        var applied = (int)(await current.ExecuteScalarAsync(ct))!;
        if (applied > LatestSchemaVersion)
        {
            throw new StoreSchemaTooNewException(applied, LatestSchemaVersion);
        }

        // Migrations that write rows (history, due times) take "now" from the store's clock, as every other write does:
        // they read it with current_setting('qwenbatch.now')::timestamptz. Set for this transaction only.
        await using (var now = new NpgsqlCommand("SELECT set_config('qwenbatch.now', @now::timestamptz::text, true)", connection))
        {
            now.Parameters.AddWithValue("now", _time.GetUtcNow());
            await now.ExecuteNonQueryAsync(ct);
        }

        foreach (var (number, name, sql) in PostgresMigrations.All.Where(m => m.Version > applied && m.Version <= version))
        {
            await ExecuteAsync(connection, sql, ct);
            await using var record = new NpgsqlCommand("INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @at)", connection);
            record.Parameters.AddWithValue("v", number);
            record.Parameters.AddWithValue("n", name);
            record.Parameters.AddWithValue("at", _time.GetUtcNow());
            await record.ExecuteNonQueryAsync(ct);
            LogMigrated(number, name);
        }

        await tx.CommitAsync(ct);
    }

    public async Task<int> GetSchemaVersionAsync(CancellationToken ct)
    {
        // Two statements: a query naming a missing table fails when planned, whatever a CASE around it says.
        await using var exists = _dataSource.CreateCommand("SELECT to_regclass('schema_migrations') IS NOT NULL");
        if (!(bool)(await exists.ExecuteScalarAsync(ct))!)
        {
            return 0;
        }

        await using var command = _dataSource.CreateCommand("SELECT coalesce(max(version), 0) FROM schema_migrations");
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }
}

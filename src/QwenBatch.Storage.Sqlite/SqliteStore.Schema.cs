using Microsoft.Data.Sqlite;

namespace QwenBatch.Storage.Sqlite;

/// <summary>The schema: numbered migrations (SqliteMigrations), applied inside one write transaction (SQLite's lock).</summary>
public sealed partial class SqliteStore
{
    public int LatestSchemaVersion => SqliteMigrations.All[^1].Version;

    public Task MigrateAsync(CancellationToken ct) => MigrateAsync(LatestSchemaVersion, ct);

    /// <summary>
    /// Applies the migrations up to <paramref name="version"/> and no further: a test builds a database as an older build
    /// left it, then migrates it the rest of the way.
    /// </summary>
    internal async Task MigrateAsync(int version, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await ExecuteAsync(connection, null, "PRAGMA journal_mode = WAL", ct);

        // A migration that rebuilds a table others refer to runs with foreign keys off, or dropping the old table would
        // delete (cascade) every row referring to it; the pragma is a no-op inside a transaction, so it is set before.
        // Which migrations are pending is known only inside the transaction: off for all of them, checked before commit.
        await ExecuteAsync(connection, null, "PRAGMA foreign_keys = OFF", ct);
        try
        {
            await using var tx = await BeginAsync(connection, ct);
            await ExecuteAsync(connection, tx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)", ct);
            await using var current = Command(connection, tx, "SELECT coalesce(max(version), 0) FROM schema_migrations");
            var applied = (long)(await current.ExecuteScalarAsync(ct))!;
            if (applied > LatestSchemaVersion)
            {
                throw new StoreSchemaTooNewException((int)applied, LatestSchemaVersion);
            }

            foreach (var (number, name, sql) in SqliteMigrations.All.Where(m => m.Version > applied && m.Version <= version))
            {
                // Migrations that write rows take "now" from the store's clock, as every other write does.
                await ExecuteAsync(connection, tx, sql, ct, ("now", NowMs()));
                await ExecuteAsync(connection, tx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @at)", ct,
                    ("v", number), ("n", name), ("at", NowMs()));
            }

            await using (var check = Command(connection, tx, "PRAGMA foreign_key_check"))
            await using (var reader = await check.ExecuteReaderAsync(ct))
            {
                if (await reader.ReadAsync(ct))
                {
                    throw new InvalidOperationException(
                        $"Migrating the store left a row of {reader.GetString(0)} referring to a missing row of {reader.GetString(2)}; nothing was changed.");
                }
            }

            await tx.CommitAsync(ct);
        }
        finally
        {
            await ExecuteAsync(connection, null, "PRAGMA foreign_keys = ON", CancellationToken.None);
        }
    }

    public async Task<int> GetSchemaVersionAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var exists = Command(connection, null, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
        if ((long)(await exists.ExecuteScalarAsync(ct))! == 0)
        {
            return 0;
        }

        await using var command = Command(connection, null, "SELECT coalesce(max(version), 0) FROM schema_migrations");
        return (int)(long)(await command.ExecuteScalarAsync(ct))!;
    }
}

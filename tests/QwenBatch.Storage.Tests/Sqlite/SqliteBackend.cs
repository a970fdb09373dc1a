using Microsoft.Data.Sqlite;
using QwenBatch.Edits;
using QwenBatch.Storage.Sqlite;

namespace QwenBatch.Storage.Tests.Sqlite;

/// <summary>The contracts on SQLite: a fresh file per test in a folder of the test's own, deleted afterwards.</summary>
internal sealed class SqliteBackend : StoreBackend
{
    private readonly string _folder = Directory.CreateTempSubdirectory("qwenbatch-sqlite-").FullName;

    public override async Task<string> CleanDatabaseAsync()
    {
        var path = await NewDatabaseAsync();
        await using var store = CreateStore(path, TimeProvider.System);
        await store.MigrateAsync(CancellationToken.None);
        return path;
    }

    public override Task<string> NewDatabaseAsync() => Task.FromResult(Path.Combine(_folder, $"{Guid.NewGuid():N}.db"));

    public override IStore CreateStore(string location, TimeProvider time) => new SqliteStore(location, time);

    public override async Task MigrateToAsync(string location, int version, TimeProvider time)
    {
        await using var store = new SqliteStore(location, time);
        await store.MigrateAsync(version, CancellationToken.None);
    }

    public override Task RecordSchemaVersionAsync(string location, int version) =>
        ExecuteAsync(location, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, 'from a newer build', 0)", ("v", version));

    public override async Task SeedLegacyAsync(string location, DateTimeOffset at)
    {
        const long Minute = 60_000, Day = 86_400_000;
        var ms = at.ToUnixTimeMilliseconds();
        var spec = StoreJson.Write(new EditSpec { Prompt = "put it on white", Images = ["/images/a.png"], N = 2 });
        await ExecuteAsync(location,
            """
            INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_micros, reserved_micros)
            VALUES ('legacy', '/manifests/legacy.csv', 'qwen-edit', '/output/legacy', @at, 1000000, 100000);
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, lease_owner, lease_expires_at, created_at, updated_at, reserved_micros)
            SELECT id, 'submitting', 'h1', 'submitting', 'qwen-edit', @spec, @at, @engine, @at + 5 * @minute, @at, @at, 40000 FROM batches WHERE name = 'legacy';
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, request_id, accepted_submits, due_at, lease_owner, lease_expires_at,
                              created_at, updated_at, submitted_at, reserved_micros)
            SELECT id, 'at-provider', 'h1', 'at_provider', 'qwen-edit', @spec, 'req-7', 1, @at + 30000, @engine, @at + 5 * @minute, @at, @at, @at, 20000
            FROM batches WHERE name = 'legacy';
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, lease_owner, lease_expires_at, created_at, updated_at, reserved_micros)
            SELECT id, 'pending', 'h1', 'pending', 'qwen-edit', @spec, @at, @engine, @at + 5 * @minute, @at, @at, 40000 FROM batches WHERE name = 'legacy';
            INSERT INTO servers (id, host, pid, concurrency, started_at, heartbeat_at) VALUES (@engine, 'host-a', 4711, 8, @at, @at);
            INSERT INTO job_outcomes_by_hour (hour, state, count) VALUES (@at / 3600000 * 3600000, 'succeeded', 3);
            INSERT INTO schedules (name, cron, time_zone, manifest, provider, storage_root, budget_micros, catch_up, next_at, created_at, last_run_at, last_batch)
            VALUES ('nightly', '0 2 * * *', 'Europe/Berlin', '/manifests/banners.csv', 'qwen-edit', '/output', 1500000, 'once',
                    @at + @day, @at - 2 * @day, @at - @day, 'nightly-done');
            INSERT INTO schedule_runs (schedule, occurrence, owner, claimed_at, batch_name, lease_expires_at, finished_at)
            VALUES ('nightly', @at - @day, @engine, @at - @day, 'nightly-done', NULL, @at - @day + @minute),
                   ('nightly', @at, @engine, @at, NULL, @at + 5 * @minute, NULL);
            """,
            ("at", ms), ("engine", LegacyRows.Engine), ("spec", spec), ("minute", Minute), ("day", Day));
    }

    public override async Task<IReadOnlyList<string>> ColumnsAsync(string location, string table)
    {
        await using var connection = new SqliteConnection($"Data Source={location};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM pragma_table_info(@t) ORDER BY cid";
        command.Parameters.AddWithValue("@t", table);
        var columns = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            columns.Add(reader.GetString(0));
        }

        return columns;
    }

    public override Task CleanUpAsync()
    {
        // The stores are disposed (their pools cleared), so the files are closed.
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    private static async Task ExecuteAsync(string location, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new SqliteConnection($"Data Source={location};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue("@" + name, value);
        }

        await command.ExecuteNonQueryAsync();
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Edits;
using QwenBatch.Storage.PostgreSql;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>
/// The contracts on a real PostgreSQL (started by the tests unless QWENBATCH_TEST_POSTGRES names one): the test class's
/// own database, emptied before each test, and further databases for the migration tests.
/// </summary>
/// <param name="stagedChunkSize">Edits per staged chunk; the default stages only imports of more than a thousand edits.</param>
internal sealed class PostgresBackend(PostgresDatabaseFixture database, int stagedChunkSize = PostgresStore.DefaultStagedChunkSize) : StoreBackend
{
    public override async Task<string> CleanDatabaseAsync()
    {
        // Migrating is a no-op after the first test of the class; truncating is much cheaper than a database per test.
        await using (var store = CreateStore(database.ConnectionString, TimeProvider.System))
        {
            await store.MigrateAsync(CancellationToken.None);
        }

        await database.TruncateAsync();
        return database.ConnectionString;
    }

    public override Task<string> NewDatabaseAsync() => database.CreateDatabaseAsync();

    public override IStore CreateStore(string location, TimeProvider time) =>
        new PostgresStore(location, time, NullLogger<PostgresStore>.Instance, stagedChunkSize);

    public override async Task MigrateToAsync(string location, int version, TimeProvider time)
    {
        await using var store = new PostgresStore(location, time, NullLogger<PostgresStore>.Instance, stagedChunkSize);
        await store.MigrateAsync(version, CancellationToken.None);
    }

    public override Task RecordSchemaVersionAsync(string location, int version) =>
        ExecuteAsync(location, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, 'from a newer build', now())", ("v", version));

    public override async Task SeedLegacyAsync(string location, DateTimeOffset at)
    {
        var spec = StoreJson.Write(new EditSpec { Prompt = "put it on white", Images = ["/images/a.png"], N = 2 });
        (string, object)[] common = [("at", at), ("engine", LegacyRows.Engine), ("spec", spec)];
        await ExecuteAsync(location,
            """
            INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_usd, reserved_usd)
            VALUES ('legacy', '/manifests/legacy.csv', 'qwen-edit', '/output/legacy', @at, 1, 0.10)
            """, common);
        await ExecuteAsync(location,
            """
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, lease_owner, lease_expires_at, created_at, updated_at, reserved_usd)
            SELECT id, 'submitting', 'h1', 'submitting', 'qwen-edit', @spec::jsonb, @at, @engine, @at + interval '5 minutes', @at, @at, 0.04
            FROM batches WHERE name = 'legacy'
            """, common);
        await ExecuteAsync(location,
            """
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, request_id, accepted_submits, due_at, lease_owner, lease_expires_at,
                              created_at, updated_at, submitted_at, reserved_usd)
            SELECT id, 'at-provider', 'h1', 'at_provider', 'qwen-edit', @spec::jsonb, 'req-7', 1, @at + interval '30 seconds', @engine,
                   @at + interval '5 minutes', @at, @at, @at, 0.02
            FROM batches WHERE name = 'legacy'
            """, common);
        await ExecuteAsync(location,
            """
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, lease_owner, lease_expires_at, created_at, updated_at, reserved_usd)
            SELECT id, 'pending', 'h1', 'pending', 'qwen-edit', @spec::jsonb, @at, @engine, @at + interval '5 minutes', @at, @at, 0.04
            FROM batches WHERE name = 'legacy'
            """, common);
        await ExecuteAsync(location,
            """
            INSERT INTO servers (id, host, pid, concurrency, started_at, heartbeat_at) VALUES (@engine, 'host-a', 4711, 8, @at, @at);
            INSERT INTO job_outcomes_by_hour (hour, state, count) VALUES (date_trunc('hour', @at, 'UTC'), 'succeeded', 3);
            INSERT INTO schedules (name, cron, time_zone, manifest, provider, storage_root, budget_usd, catch_up, next_at, created_at, last_run_at, last_batch)
            VALUES ('nightly', '0 2 * * *', 'Europe/Berlin', '/manifests/banners.csv', 'qwen-edit', '/output', 1.5, 'once',
                    @at + interval '1 day', @at - interval '2 days', @at - interval '1 day', 'nightly-done');
            INSERT INTO schedule_runs (schedule, occurrence, owner, claimed_at, batch_name, lease_expires_at, finished_at)
            VALUES ('nightly', @at - interval '1 day', @engine, @at - interval '1 day', 'nightly-done', NULL, @at - interval '1 day' + interval '1 minute'),
                   ('nightly', @at, @engine, @at, NULL, @at + interval '5 minutes', NULL);
            """, common);
    }

    public override async Task<IReadOnlyList<string>> ColumnsAsync(string location, string table)
    {
        await using var connection = new NpgsqlConnection(location);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = @t ORDER BY ordinal_position", connection);
        command.Parameters.AddWithValue("t", table);
        var columns = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            columns.Add(reader.GetString(0));
        }

        return columns;
    }

    private static async Task ExecuteAsync(string location, string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(location);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync();
    }
}

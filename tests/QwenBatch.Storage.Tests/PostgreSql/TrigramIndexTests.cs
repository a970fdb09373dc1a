using QwenBatch.Testing.Time;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>
/// Migration 7's trigram indexes for the edit list's text filter: made where pg_trgm can be created, and their absence must not
/// fail the migration on a server where it cannot (a role without the right to create extensions).
/// </summary>
public sealed class TrigramIndexTests(PostgresDatabaseFixture database) : IClassFixture<PostgresDatabaseFixture>
{
    private static readonly CancellationToken Ct = CancellationToken.None;

    [Fact]
    public async Task MigrateAsync_PgTrgmAvailable_CreatesTrigramIndexesThatServeTheTextFilter()
    {
        var connectionString = await database.CreateDatabaseAsync();
        await using var store = new PostgresStore(connectionString, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(Ct);
        await ImportAsync(store);

        (await TrigramIndexesAsync(connectionString)).ShouldBe(["job_search_key_trgm", "job_search_prompt_trgm"]);
        // Only bitmap scans allowed: the plan must find the trigram index for the prompt as the store's query asks for it.
        var plan = await ScalarsAsync(connectionString,
            "SET enable_seqscan = off; SET enable_indexscan = off; EXPLAIN SELECT job_id FROM job_search WHERE key ILIKE '%row-2%' OR prompt ILIKE '%row-2 on a%'");
        string.Join("\n", plan).ShouldContain("job_search_prompt_trgm");
        (await store.QueryEditsAsync(new EditQuery(Text: "ROW-2 on a"), Ct)).Select(j => j.Key).ShouldBe(["row-2"]);
    }

    [Fact]
    public async Task MigrateAsync_RoleThatCannotCreateExtensions_SucceedsAndTheTextFilterStillWorks()
    {
        var server = await PostgresServer.GetAsync();
        var role = $"qwenbatch_limited_{Guid.NewGuid():N}"[..40];
        var connectionString = await database.CreateDatabaseAsync();
        await ScalarsAsync(server.AdminConnectionString, $"CREATE ROLE {role} LOGIN PASSWORD 'limited'");
        try
        {
            // The database belongs to the superuser: the role may create tables in public but not extensions in the database.
            await ScalarsAsync(connectionString, $"GRANT CONNECT ON DATABASE \"{new NpgsqlConnectionStringBuilder(connectionString).Database}\" TO {role}; GRANT USAGE, CREATE ON SCHEMA public TO {role}");
            var limited = new NpgsqlConnectionStringBuilder(connectionString) { Username = role, Password = "limited" }.ConnectionString;
            await using (var store = new PostgresStore(limited, TimeProvider.System, NullLogger<PostgresStore>.Instance))
            {
                await store.MigrateAsync(Ct);
                await ImportAsync(store);

                (await store.GetSchemaVersionAsync(Ct)).ShouldBe(store.LatestSchemaVersion);
                (await store.QueryEditsAsync(new EditQuery(Text: "ROW-2 on a"), Ct)).Select(j => j.Key).ShouldBe(["row-2"]);
            }

            (await TrigramIndexesAsync(connectionString)).ShouldBeEmpty();
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await server.DropDatabaseAsync(connectionString);
            await ScalarsAsync(server.AdminConnectionString, $"DROP ROLE IF EXISTS {role}");
        }
    }

    [Fact]
    public async Task JobSearch_AfterImportPurgeAndTruncate_HoldsExactlyTheEdits()
    {
        var connectionString = await database.CreateDatabaseAsync();
        var time = TestClock.Create();
        await using var store = new PostgresStore(connectionString, time, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(Ct);
        await ImportAsync(store);
        await ImportAsync(store, "kept");
        await store.RequestCancelAsync((await store.FindBatchAsync("trgm", Ct))!.Id, Ct);
        time.Advance(TimeSpan.FromDays(31));

        var expired = await store.FindExpiredBatchAsync(time.GetUtcNow().AddDays(-30), Ct);
        (await store.PurgeBatchChunkAsync(expired!.Value, time.GetUtcNow().AddDays(-30), 4, Ct)).JobsDeleted.ShouldBe(4);
        var afterPurge = await ScalarsAsync(connectionString, "SELECT count(*) FROM job_search WHERE job_id NOT IN (SELECT id FROM jobs) UNION ALL SELECT count(*) FROM job_search");
        await ScalarsAsync(connectionString, "TRUNCATE batches CASCADE");
        var afterTruncate = await ScalarsAsync(connectionString, "SELECT count(*) FROM job_search");

        afterPurge.ShouldBe(["0", "56"]);
        afterTruncate.ShouldBe(["0"]);
    }

    private static async Task ImportAsync(IStore store, string name = "trgm")
    {
        var edits = Enumerable.Range(1, 30).Select(i => new NewEdit($"row-{i}", "h", "simulator",
            new EditSpec { Prompt = $"put row-{i} on a white background", Images = ["https://example.com/a.png"] }));
        await store.ImportBatchAsync(new NewBatch(name, "/m.csv", "simulator", "/out"), edits, Ct);
    }

    private static async Task<List<string>> TrigramIndexesAsync(string connectionString) =>
        await ScalarsAsync(connectionString, "SELECT indexname FROM pg_indexes WHERE tablename = 'job_search' AND indexdef LIKE '%gin_trgm_ops%' ORDER BY indexname");

    private static async Task<List<string>> ScalarsAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var values = new List<string>();
        do
        {
            while (await reader.ReadAsync(Ct))
            {
                values.Add(reader.GetValue(0).ToString()!);
            }
        }
        while (await reader.NextResultAsync(Ct));

        return values;
    }
}

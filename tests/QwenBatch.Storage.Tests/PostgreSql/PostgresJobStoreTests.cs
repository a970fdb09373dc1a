using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Storage.PostgreSql;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>The store contract on a real PostgreSQL (started by the tests unless QWENBATCH_TEST_POSTGRES names one).</summary>
public class PostgresJobStoreTests(PostgresDatabaseFixture database) : JobStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    /// <summary>Jobs per staged chunk: the default stages only imports of more than a thousand jobs.</summary>
    protected virtual int StagedChunkSize => PostgresJobStore.DefaultStagedChunkSize;

    protected override bool SignalsAcrossInstances => true;

    protected override bool PulsesWhenListening => true;

    protected override async Task<string> CleanDatabaseAsync()
    {
        // Migrating is a no-op after the first test of the class; truncating is much cheaper than a database per test.
        await using (var store = CreateStore(database.ConnectionString, TimeProvider.System))
        {
            await store.MigrateAsync(Ct);
        }

        await database.TruncateAsync();
        return database.ConnectionString;
    }

    protected override Task<string> NewDatabaseAsync() => database.CreateDatabaseAsync();

    protected override IJobStore CreateStore(string location, TimeProvider time) =>
        new PostgresJobStore(location, time, NullLogger<PostgresJobStore>.Instance, stagedChunkSize: StagedChunkSize);

    protected override async Task RecordSchemaVersionAsync(string location, int version)
    {
        await using var connection = new Npgsql.NpgsqlConnection(location);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, 'from a newer build', now())", connection);
        command.Parameters.AddWithValue("v", version);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task RequestCancelAsync_WhileAWorkerCommitsAJobIntoSubmitting_FlagsThatJobForItsCancelStep()
    {
        var import = await ImportAsync(1);
        var job = (await ClaimAsync()).ShouldHaveSingleItem();

        // A worker's move to submitting, in flight: the cancel's statement waits for the row, then the move commits.
        await using var worker = new Npgsql.NpgsqlConnection(database.ConnectionString);
        await worker.OpenAsync(Ct);
        await using var move = await worker.BeginTransactionAsync(Ct);
        await using (var update = new Npgsql.NpgsqlCommand($"UPDATE jobs SET state = 'submitting' WHERE id = {job.Id}", worker, move))
        {
            await update.ExecuteNonQueryAsync(Ct);
        }

        var cancel = Store.RequestCancelAsync(import.Batch.Id, Ct);
        await using (var look = new Npgsql.NpgsqlConnection(database.ConnectionString))
        {
            await look.OpenAsync(Ct);
            await using var waiting = new Npgsql.NpgsqlCommand("SELECT count(*) FROM pg_locks WHERE NOT granted", look);
            while ((long)(await waiting.ExecuteScalarAsync(Ct))! == 0)
            {
                cancel.IsCompleted.ShouldBeFalse("the cancel did not wait for the worker's row");
                await Task.Delay(10, Ct);
            }
        }

        await move.CommitAsync(Ct);
        await cancel;

        // Not cancelled (it left pending before the cancel could take it) and not left to run to the end: flagged.
        var after = await GetAsync(job.Id);
        (after.State, after.CancelRequested).ShouldBe((QwenBatch.Edits.EditState.Submitting, true));
    }
}

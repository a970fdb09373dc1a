using Npgsql;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>
/// The whole store contract again on PostgreSQL with staged chunks of two jobs: every import of more than two jobs is
/// staged (migration 10) and becomes jobs rows only through claims and the reads that expand, so each contract test with a
/// larger batch proves that staged jobs behave as imported ones — claimed in import order, counted, cancelled, resumed.
/// The tests below show that the staging really happens.
/// </summary>
public sealed class PostgresStagedImportTests(PostgresDatabaseFixture database) : PostgresJobStoreTests(database)
{
    private readonly PostgresDatabaseFixture _database = database;

    protected override int StagedChunkSize => 2;

    [Fact]
    public async Task ImportBatchAsync_MoreThanAChunk_StagesJobsThatClaimsExpandInImportOrder()
    {
        var import = await ImportAsync(5);

        (await CountAsync("jobs")).ShouldBe(0);
        (await CountAsync("job_chunks")).ShouldBe(3);
        (await Store.GetProgressAsync(import.Batch.Id, Ct)).Count(EditState.Pending).ShouldBe(5);
        (await Store.NextDueAtAsync(import.Batch.Id, Ct)).ShouldBe(Now);

        var first = await ClaimAsync(limit: 3);

        first.Select(j => j.Key).ShouldBe(["row-0001", "row-0002", "row-0003"]);
        (await CountAsync("jobs")).ShouldBe(4);
        (await CountAsync("job_chunks")).ShouldBe(1);
        (await Store.GetProgressAsync(import.Batch.Id, Ct)).Count(EditState.Pending).ShouldBe(5);
        (await ClaimAsync(limit: 10)).Select(j => j.Key).ShouldBe(["row-0004", "row-0005"]);
        (await CountAsync("job_chunks")).ShouldBe(0);
    }

    [Fact]
    public async Task ImportBatchAsync_ChunkOrFewer_GoesStraightIntoJobs()
    {
        await ImportAsync(2);

        (await CountAsync("jobs")).ShouldBe(2);
        (await CountAsync("job_chunks")).ShouldBe(0);
    }

    [Fact]
    public async Task ClaimAsync_StagedByAnotherProcessUnheard_ExpandsOnceNextDueAtSeesTheChunks()
    {
        var worker = OpenStore();
        (await worker.ClaimAsync(new ClaimRequest(Worker, 10, Lease), Ct)).ShouldBeEmpty();
        await ImportAsync(3);

        // The worker found nothing staged a moment ago and heard no notification (it is not listening): a claim does not
        // look again, but the due time it asks for next does see the chunks, and then the claim looks.
        (await worker.ClaimAsync(new ClaimRequest(Worker, 10, Lease), Ct)).ShouldBeEmpty();
        (await worker.NextDueAtAsync(null, Ct)).ShouldBe(Now);
        (await worker.ClaimAsync(new ClaimRequest(Worker, 10, Lease), Ct)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task ClaimAsync_StagedByAnotherProcessUnheard_LooksAgainAfterTheRecheckInterval()
    {
        var worker = OpenStore();
        (await worker.ClaimAsync(new ClaimRequest(Worker, 10, Lease), Ct)).ShouldBeEmpty();
        await ImportAsync(3);

        Time.Advance(TimeSpan.FromSeconds(31));

        (await worker.ClaimAsync(new ClaimRequest(Worker, 10, Lease), Ct)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task ImportBatchAsync_StagedBatchAgainUnchanged_ResumesWithoutExpanding()
    {
        await ImportAsync(5);

        var again = await ImportAsync(5);

        again.Resumed.ShouldBeTrue();
        (again.JobsAdded, again.JobsReplaced).ShouldBe((0, 0));
        (await CountAsync("job_chunks")).ShouldBe(3);
        (await Store.GetProgressAsync(again.Batch.Id, Ct)).Count(EditState.Pending).ShouldBe(5);
    }

    [Fact]
    public async Task ImportBatchAsync_StagedBatchAgainWithAChangedRow_ExpandsAndSupersedesThatJob()
    {
        var first = await ImportAsync(5);
        var rows = Enumerable.Range(1, 5).Select(i => NewEdit($"row-{i:D4}", hash: i == 4 ? "h2" : "h1")).ToList();

        var again = await Store.ImportBatchAsync(Batch(), rows, Ct);

        (again.JobsAdded, again.JobsReplaced).ShouldBe((1, 1));
        (await CountAsync("job_chunks")).ShouldBe(0);
        var progress = await Store.GetProgressAsync(first.Batch.Id, Ct);
        (progress.Count(EditState.Pending), progress.Count(EditState.Cancelled)).ShouldBe((5, 1));
    }

    [Fact]
    public async Task ImportBatchAsync_ChunksLargeEnoughToCompress_AreStoredWithLz4AndClaimedWhole()
    {
        // Two jobs a chunk, each with a 6,000-character prompt: 12 KB chunks, past the size PostgreSQL compresses from.
        var prompt = string.Concat(Enumerable.Repeat("keep the label sharp, the shadow soft and the background white; ", 100));
        var jobs = NewJobs(5).Select(j => j with { Spec = j.Spec with { Prompt = $"{j.Key}: {prompt}" } }).ToArray();

        await Store.ImportBatchAsync(Batch(), jobs, Ct);

        await using (var connection = new NpgsqlConnection(_database.ConnectionString))
        {
            await connection.OpenAsync(Ct);
            await using var command = new NpgsqlCommand(
                "SELECT string_agg(DISTINCT coalesce(pg_column_compression(payload), 'none'), ',') || ' ' || count(*) FILTER (WHERE pg_column_size(payload) * 4 < length(payload))::text FROM job_chunks",
                connection);
            // Every chunk compressed, each to less than a quarter of its length.
            (await command.ExecuteScalarAsync(Ct)).ShouldBe("lz4 3");
        }

        var claimed = await ClaimAsync(limit: 10);
        claimed.Select(j => j.Key).ShouldBe(jobs.Select(j => j.Key));
        claimed.Select(j => j.Spec.Prompt).ShouldBe(jobs.Select(j => j.Spec.Prompt));
    }

    private async Task<long> CountAsync(string table)
    {
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}

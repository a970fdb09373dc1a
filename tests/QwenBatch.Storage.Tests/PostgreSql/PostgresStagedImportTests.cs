using Npgsql;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>
/// That staging really happens (migration 10) with chunks of two edits, and that the feeder's rounds expand the chunks in
/// import order; the staged contract classes (PostgresContracts) prove that staged edits behave as imported ones.
/// </summary>
public sealed class PostgresStagedImportTests(PostgresDatabaseFixture database) : StoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database, stagedChunkSize: 2);

    [Fact]
    public async Task ImportBatchAsync_MoreThanAChunk_StagesEditsThatFeederRoundsExpandInImportOrder()
    {
        var import = await ImportAsync(5);

        (await CountAsync("jobs")).ShouldBe(0);
        (await CountAsync("job_chunks")).ShouldBe(3);
        (await Store.GetProgressAsync(import.Batch.Id, Ct)).Count(EditState.Pending).ShouldBe(5);
        (await Store.NextDueAsync(import.Batch.Id, Ct)).Pending.ShouldBe(Now);

        var first = await FeedAsync(limit: 3);

        first.Select(e => e.Key).ShouldBe(["row-0001", "row-0002", "row-0003"]);
        (await CountAsync("jobs")).ShouldBe(4);
        (await CountAsync("job_chunks")).ShouldBe(1);
        var progress = await Store.GetProgressAsync(import.Batch.Id, Ct);
        (progress.Count(EditState.Queued), progress.Count(EditState.Pending)).ShouldBe((3, 2));
        (await FeedAsync(limit: 10)).Select(e => e.Key).ShouldBe(["row-0004", "row-0005"]);
        (await CountAsync("job_chunks")).ShouldBe(0);
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task ImportBatchAsync_ChunkOrFewer_GoesStraightIntoRows()
    {
        await ImportAsync(2);

        (await CountAsync("jobs")).ShouldBe(2);
        (await CountAsync("job_chunks")).ShouldBe(0);
    }

    [Fact]
    public async Task FeedAsync_StagedByAnotherProcess_ExpandsOnceNextDueSeesTheChunks()
    {
        var feeder = OpenStore();
        (await FeedAsync(store: feeder)).ShouldBeEmpty();
        await ImportAsync(3);

        // The feeder found nothing staged a moment ago and does not look again at once, but the due time it asks for when it
        // has nothing to do sees the chunks, and then its round looks.
        (await FeedAsync(store: feeder)).ShouldBeEmpty();
        (await feeder.NextDueAsync(null, Ct)).Pending.ShouldBe(Now);
        (await FeedAsync(store: feeder)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task FeedAsync_StagedByAnotherProcess_LooksAgainAfterTheRecheckInterval()
    {
        var feeder = OpenStore();
        (await FeedAsync(store: feeder)).ShouldBeEmpty();
        await ImportAsync(3);

        Time.Advance(TimeSpan.FromSeconds(31));

        (await FeedAsync(store: feeder)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task FeedAsync_RoundRolledBack_LeavesTheChunksStaged()
    {
        await ImportAsync(5);

        await Should.ThrowAsync<InvalidOperationException>(() => FeedAsync(limit: 3, policy: new FailingPolicy()));

        (await CountAsync("jobs")).ShouldBe(0);
        (await CountAsync("job_chunks")).ShouldBe(3);
        (await FeedAsync(limit: 10)).Count.ShouldBe(5);
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
    public async Task ImportBatchAsync_StagedBatchAgainWithAChangedRow_ExpandsAndSupersedesThatEdit()
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
    public async Task RequestCancelAsync_StagedBatch_CancelsTheStagedEditsToo()
    {
        var import = await ImportAsync(5);

        (await Store.RequestCancelAsync(import.Batch.Id, Ct)).ShouldBe(5);

        (await CountAsync("job_chunks")).ShouldBe(0);
        (await Store.GetProgressAsync(import.Batch.Id, Ct)).Count(EditState.Cancelled).ShouldBe(5);
    }

    [Fact]
    public async Task ImportBatchAsync_ChunksLargeEnoughToCompress_AreStoredWithLz4AndFedWhole()
    {
        // Two edits a chunk, each with a 6,000-character prompt: 12 KB chunks, past the size PostgreSQL compresses from.
        var prompt = string.Concat(Enumerable.Repeat("keep the label sharp, the shadow soft and the background white; ", 100));
        var edits = NewEdits(5).Select(e => e with { Spec = e.Spec with { Prompt = $"{e.Key}: {prompt}" } }).ToArray();

        await Store.ImportBatchAsync(Batch(), edits, Ct);

        await using (var connection = new NpgsqlConnection(database.ConnectionString))
        {
            await connection.OpenAsync(Ct);
            await using var command = new NpgsqlCommand(
                "SELECT string_agg(DISTINCT coalesce(pg_column_compression(payload), 'none'), ',') || ' ' || count(*) FILTER (WHERE pg_column_size(payload) * 4 < length(payload))::text FROM job_chunks",
                connection);
            // Every chunk compressed, each to less than a quarter of its length.
            (await command.ExecuteScalarAsync(Ct)).ShouldBe("lz4 3");
        }

        var fed = await FeedAsync(limit: 10);
        fed.Select(e => e.Key).ShouldBe(edits.Select(e => e.Key));
        fed.Select(e => e.Spec.Prompt).ShouldBe(edits.Select(e => e.Spec.Prompt));
    }

    private async Task<long> CountAsync(string table)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    /// <summary>A policy that fails inside the round, after the expansion: the whole round rolls back.</summary>
    private sealed class FailingPolicy : Feeding.IFeedPolicy
    {
        public IReadOnlyList<Feeding.FeedDecision> Decide(Feeding.FeedCandidates candidates) => throw new InvalidOperationException("the policy failed");
    }
}

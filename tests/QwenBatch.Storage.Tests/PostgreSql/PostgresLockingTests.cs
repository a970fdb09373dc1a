using Npgsql;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>
/// What PostgreSQL's row locks must give, shown with a transaction of another session held open at the risky point
/// (SQLite has one writer at a time, so the same moments cannot happen there).
/// </summary>
public sealed class PostgresLockingTests(PostgresDatabaseFixture database) : StoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);

    [Fact]
    public async Task RequestCancelAsync_WhileAWorkerCommitsAnEditIntoSubmitting_FlagsThatEdit()
    {
        var edit = (await QueueAsync(1))[0];

        // A worker's move to submitting, in flight: the cancel's statement waits for the row, then the move commits.
        await using var worker = new NpgsqlConnection(database.ConnectionString);
        await worker.OpenAsync(Ct);
        await using var move = await worker.BeginTransactionAsync(Ct);
        await using (var update = new NpgsqlCommand($"UPDATE jobs SET state = 'submitting' WHERE id = {edit.Id}", worker, move))
        {
            await update.ExecuteNonQueryAsync(Ct);
        }

        var cancel = Store.RequestCancelAsync(edit.BatchId, Ct);
        await WaitUntilSomeoneWaitsAsync(cancel);
        await move.CommitAsync(Ct);
        await cancel;

        // Not cancelled (it left queued before the cancel could take it) and not left to run to the end: flagged.
        var after = await GetAsync(edit.Id);
        (after.State, after.CancelRequested, after.ReservedUsd).ShouldBe((EditState.Submitting, true, EditCost));
    }

    [Fact]
    public async Task FeedAsync_EditLockedByAnotherFeedersRound_TakesTheNextOnesWithoutWaiting()
    {
        var edits = await ImportEditsAsync(3);
        await using var other = new NpgsqlConnection(database.ConnectionString);
        await other.OpenAsync(Ct);
        await using var round = await other.BeginTransactionAsync(Ct);
        await using (var take = new NpgsqlCommand($"SELECT id FROM jobs WHERE id = {edits[0].Id} FOR UPDATE", other, round))
        {
            await take.ExecuteNonQueryAsync(Ct);
        }

        var fed = await FeedAsync();
        await round.RollbackAsync(Ct);

        fed.Select(e => e.Id).ShouldBe([edits[1].Id, edits[2].Id]);
        (await FeedAsync()).ShouldHaveSingleItem().Id.ShouldBe(edits[0].Id);
    }

    [Fact]
    public async Task FeedAsync_AnotherTransactionReservingOnTheBatch_DecidesAfterItCommitsAgainstWhatItReserved()
    {
        var edits = await ImportEditsAsync(2, budget: 0.06m);

        // Another session holds the batch row with a reservation not yet committed, as a feeder round mid-write does.
        await using var other = new NpgsqlConnection(database.ConnectionString);
        await other.OpenAsync(Ct);
        await using var round = await other.BeginTransactionAsync(Ct);
        await using (var reserve = new NpgsqlCommand($"UPDATE batches SET reserved_usd = reserved_usd + 0.04 WHERE id = {edits[0].BatchId}", other, round))
        {
            await reserve.ExecuteNonQueryAsync(Ct);
        }

        var feed = FeedAsync();
        await WaitUntilSomeoneWaitsAsync(feed);
        await round.CommitAsync(Ct);

        // $0.04 committed elsewhere: neither edit fits the $0.06 any more.
        (await feed).ShouldBeEmpty();
        (await GetAsync(edits[0].Id)).State.ShouldBe(EditState.Held);
    }

    [Fact]
    public async Task ImportBatchAsync_ResumeSupersedingAnEditAFeederRoundHolds_WaitsForTheRoundWithoutDeadlock()
    {
        var edits = await ImportEditsAsync(2);

        // A feeder round mid-way: it holds the edit it took and then locks the batch row, as FeedAsync does.
        await using var other = new NpgsqlConnection(database.ConnectionString);
        await other.OpenAsync(Ct);
        await using var round = await other.BeginTransactionAsync(Ct);
        await using (var take = new NpgsqlCommand($"SELECT id FROM jobs WHERE id = {edits[1].Id} FOR UPDATE", other, round))
        {
            await take.ExecuteNonQueryAsync(Ct);
        }

        var resume = Store.ImportBatchAsync(Batch(budget: 5m), [NewEdit(edits[0].Key), NewEdit(edits[1].Key, hash: "h2")], Ct);
        await WaitUntilSomeoneWaitsAsync(resume);
        await using (var write = new NpgsqlCommand(
            $"SELECT id FROM batches WHERE id = {edits[0].BatchId} FOR UPDATE; UPDATE jobs SET state = 'queued' WHERE id = {edits[1].Id}", other, round))
        {
            await write.ExecuteNonQueryAsync(Ct);
        }

        await round.CommitAsync(Ct);
        var import = await resume;

        // The round queued the edit first: superseded, it keeps going; its replacement is pending.
        (import.JobsAdded, import.JobsReplaced, import.Batch.BudgetUsd).ShouldBe((1, 1, 5m));
        var old = await GetAsync(edits[1].Id);
        old.State.ShouldBe(EditState.Queued);
        old.SupersededBy.ShouldNotBeNull();
    }

    /// <summary>
    /// Waits (on the real clock: a lock wait is PostgreSQL's, not the fake clock's) until a session of this test's database
    /// waits for a lock; other classes' databases on the same server are not counted.
    /// </summary>
    private async Task WaitUntilSomeoneWaitsAsync(Task pending)
    {
        await using var look = new NpgsqlConnection(database.ConnectionString);
        await look.OpenAsync(Ct);
        await using var waiting = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", look);
        while ((long)(await waiting.ExecuteScalarAsync(Ct))! == 0)
        {
            pending.IsCompleted.ShouldBeFalse("the store's statement did not wait for the other session's row");
            await Task.Delay(10, Ct);
        }
    }
}

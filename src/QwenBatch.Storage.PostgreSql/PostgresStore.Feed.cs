using Npgsql;
using NpgsqlTypes;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// The feeder's round and the poller's claim (IEditStore): the two places edits are taken with
/// <c>FOR UPDATE SKIP LOCKED</c>, so any number of processes take disjoint edits without waiting on each other.
/// </summary>
public sealed partial class PostgresStore
{
    /// <summary>What the history and the error of a flagged edit that came back to pending say when a feeder round cancels it.</summary>
    internal const string CancelledByOperator = "cancelled by an operator";

    public async Task<IReadOnlyList<EditRecord>> FeedAsync(FeedRequest request, IFeedPolicy policy, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(request.Limit);
        if (request.Limit == 0)
        {
            return [];
        }

        var now = _time.GetUtcNow();
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var taken = await TakeDueAsync(connection, request, now, request.Limit, [], ct);
        if (taken.Count < request.Limit && await TryExpandForFeedAsync(connection, request.BatchId, request.Limit - taken.Count, now, ct))
        {
            taken.AddRange(await TakeDueAsync(connection, request, now, request.Limit - taken.Count, taken, ct));
            taken.Sort((a, b) => a.DueAt != b.DueAt ? a.DueAt.CompareTo(b.DueAt) : a.Id.CompareTo(b.Id));
        }

        if (taken.Count == 0)
        {
            await tx.CommitAsync(ct);
            return [];
        }

        // An edit flagged for cancel that came back to pending (a submit that never got out, a task the provider failed)
        // is not fed again: the operator's cancel stands. The policy decides the others.
        var flagged = taken.Where(e => e.CancelRequested).ToList();
        var candidates = taken.Where(e => !e.CancelRequested).ToList();
        var day = DateOnly.FromDateTime(now.UtcDateTime);
        var (batches, providers) = await LockAndReadLoadAsync(connection, candidates, now, day, ct);
        var decisions = candidates.Count == 0 ? [] : policy.Decide(new FeedCandidates(candidates, batches, providers, day));
        if (decisions.Count != candidates.Count)
        {
            throw new InvalidOperationException($"The feed policy decided {decisions.Count} edits of {candidates.Count}.");
        }

        var writes = new List<FeedWrite>();
        writes.AddRange(flagged.Select(e => new FeedWrite(e, EditState.Cancelled, 0m, CancelledByOperator)));
        for (var i = 0; i < candidates.Count; i++)
        {
            switch (decisions[i])
            {
                case FeedDecision.Queue queue:
                    writes.Add(new FeedWrite(candidates[i], EditState.Queued, queue.ReserveUsd, null));
                    break;
                case FeedDecision.Hold hold:
                    writes.Add(new FeedWrite(candidates[i], EditState.Held, 0m, hold.Reason));
                    break;
            }
        }

        var written = await WriteFeedAsync(connection, writes, request.By, now, ct);
        await tx.CommitAsync(ct);

        // The rows were locked by this round from the take to the commit, so every write applies and the edits are exactly
        // as written; the guard (still pending) is kept all the same, and only what it wrote is returned.
        return writes.Where(w => w.To == EditState.Queued && written.Contains(w.Edit.Id))
            .Select(w => w.Edit with { State = EditState.Queued, ReservedUsd = w.Reserved, UpdatedAt = now })
            .ToList();
    }

    public async Task<IReadOnlyList<EditRecord>> ClaimPollsAsync(PollClaim claim, CancellationToken ct)
    {
        // The claim moves only the due time: the poll's own transition writes the edit (and its updated_at) afterwards, and a
        // poller that dies in between leaves the edit due again once the lease has passed. An edit flagged for cancel is
        // taken as a due one: the flag makes it due at once (the cancel, and every transition of a flagged edit), while a
        // clause of its own would hand it to every round, again and again, while one poller is sending its cancel.
        var now = _time.GetUtcNow();
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH due AS (
                SELECT {EditColumns} FROM jobs
                WHERE state = 'at_provider' AND due_at <= @now AND (@batch::bigint IS NULL OR batch_id = @batch)
                ORDER BY due_at, id
                LIMIT @limit
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE jobs j SET due_at = @until FROM due WHERE j.id = due.id
            )
            SELECT * FROM due ORDER BY due_at, id
            """);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("until", now + claim.Lease);
        command.Parameters.Add(BatchId(claim.BatchId));
        command.Parameters.AddWithValue("limit", claim.Limit);
        return await ListAsync(command, r => ReadEdit(r, Dialect), ct);
    }

    public async Task<DateTimeOffset?> PullWaveForwardAsync(WavePull pull, CancellationToken ct)
    {
        // One guarded statement on the batch's edits at the provider (the batch and state index): the guards are what make
        // a lesson only ever bring a poll sooner, and leave alone edits already on their poll schedule.
        await using var command = _dataSource.CreateCommand(
            """
            WITH pulled AS (
                UPDATE jobs SET due_at = submitted_at + @within
                WHERE batch_id = @batch AND state = 'at_provider' AND provider = @provider AND polls = 0 AND NOT cancel_requested
                  AND coalesce((spec ->> 'n')::int, 1) = @n AND (spec ->> 'size') IS NOT DISTINCT FROM @size
                  AND due_at > submitted_at + @due_after AND (@due_before::timestamptz IS NULL OR due_at < @due_before)
                RETURNING due_at
            )
            SELECT min(due_at) FROM pulled
            """);
        command.Parameters.AddWithValue("within", pull.Within);
        command.Parameters.AddWithValue("due_after", pull.DueAfter);
        command.Parameters.Add(new NpgsqlParameter("due_before", NpgsqlDbType.TimestampTz) { Value = (object?)pull.DueBefore ?? DBNull.Value });
        command.Parameters.AddWithValue("batch", pull.BatchId);
        command.Parameters.AddWithValue("provider", pull.Provider);
        command.Parameters.AddWithValue("n", pull.N);
        command.Parameters.Add(new NpgsqlParameter("size", NpgsqlDbType.Text) { Value = (object?)pull.Size ?? DBNull.Value });
        return await command.ExecuteScalarAsync(ct) is DateTime earliest ? new DateTimeOffset(earliest, TimeSpan.Zero) : null;
    }

    /// <summary>
    /// Locks and returns up to <paramref name="limit"/> due pending current edits, oldest due first, passing over rows
    /// another feeder has locked and the ones in <paramref name="taken"/>; each provider named in the request's
    /// ProviderLimits gives at most its allowance (less what <paramref name="taken"/> has of it). A named provider's rows
    /// beyond what the round keeps stay locked until it commits: other feeders take the next ones meanwhile.
    /// </summary>
    private static async Task<List<EditRecord>> TakeDueAsync(
        NpgsqlConnection connection, FeedRequest request, DateTimeOffset now, int limit, IReadOnlyList<EditRecord> taken, CancellationToken ct)
    {
        var named = (request.ProviderLimits ?? new Dictionary<string, int>()).OrderBy(p => p.Key, StringComparer.Ordinal).ToArray();
        var room = named.Select(p => Math.Max(0, p.Value - taken.Count(e => e.Provider == p.Key))).ToArray();
        const string Due = "state = 'pending' AND due_at <= @now AND superseded_by IS NULL AND (@batch::bigint IS NULL OR batch_id = @batch) AND id <> ALL(@taken)";
        await using var command = new NpgsqlCommand(
            $"""
            WITH free AS (
                SELECT {EditColumns} FROM jobs
                WHERE {Due} AND NOT (provider = ANY(@named))
                ORDER BY due_at, id LIMIT @limit
                FOR UPDATE SKIP LOCKED
            ), capped AS (
                SELECT l.* FROM unnest(@named, @room) AS p(provider, room) CROSS JOIN LATERAL (
                    SELECT {EditColumns} FROM jobs
                    WHERE {Due} AND provider = p.provider
                    ORDER BY due_at, id LIMIT least(p.room, @limit)
                    FOR UPDATE SKIP LOCKED) l
            )
            SELECT * FROM (SELECT * FROM free UNION ALL SELECT * FROM capped) c ORDER BY due_at, id LIMIT @limit
            """, connection);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.Add(BatchId(request.BatchId));
        command.Parameters.AddWithValue("taken", taken.Select(e => e.Id).ToArray());
        command.Parameters.AddWithValue("named", named.Select(p => p.Key).ToArray());
        command.Parameters.AddWithValue("room", room);
        command.Parameters.AddWithValue("limit", limit);
        return await ListAsync(command, r => ReadEdit(r, Dialect), ct);
    }

    /// <summary>
    /// Locks the candidates' batch rows (in id order, as every statement that moves money does) and each provider's
    /// rate_limits row (created if missing, in account order), then reads what the policy decides against as last
    /// committed: a feeder that waited for another's locks reads after that one's commit, so no number of feeders can pass
    /// a budget, a daily budget or a MaxInFlight together. One round trip.
    /// </summary>
    private static async Task<(Dictionary<long, BatchMoney> Batches, Dictionary<string, ProviderLoad> Providers)> LockAndReadLoadAsync(
        NpgsqlConnection connection, List<EditRecord> candidates, DateTimeOffset now, DateOnly day, CancellationToken ct)
    {
        var batches = new Dictionary<long, BatchMoney>();
        var providers = new Dictionary<string, ProviderLoad>(StringComparer.Ordinal);
        if (candidates.Count == 0)
        {
            return (batches, providers);
        }

        var batchIds = candidates.Select(e => e.BatchId).Distinct().Order().ToArray();
        var names = candidates.Select(e => e.Provider).Distinct().Order(StringComparer.Ordinal).ToArray();
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(Statement(
            "SELECT id AS batch_id, budget_usd, spent_usd, reserved_usd FROM batches WHERE id = ANY(@batches) ORDER BY id FOR UPDATE",
            ("batches", batchIds)));
        batch.BatchCommands.Add(Statement(
            "INSERT INTO rate_limits (account, tat, granted_at) SELECT p, @now, @now FROM unnest(@providers) AS p ORDER BY p ON CONFLICT (account) DO NOTHING",
            ("providers", names), ("now", now)));
        batch.BatchCommands.Add(Statement("SELECT account FROM rate_limits WHERE account = ANY(@providers) ORDER BY account FOR UPDATE", ("providers", names)));

        // A statement of its own, after the locks: its snapshot holds every round committed before them. In flight, spent
        // and reserved are read together, so a settlement (a reservation becoming a charge) is seen whole or not at all.
        batch.BatchCommands.Add(Statement(
            """
            SELECT p.provider,
                (SELECT count(*)::int FROM jobs j WHERE j.provider = p.provider AND j.state IN ('queued', 'submitting', 'at_provider')),
                coalesce((SELECT s.spent_usd FROM spend_by_day s WHERE s.day = @day AND s.provider = p.provider), 0),
                coalesce((SELECT sum(j.reserved_usd) FROM jobs j WHERE j.provider = p.provider AND j.reserved_usd <> 0), 0)
            FROM unnest(@providers) AS p(provider)
            """,
            ("providers", names), ("day", day)));
        await using var reader = await batch.ExecuteReaderAsync(ct);
        do
        {
            // Told apart by their first column: the locks' results are read through, only the two reads are kept.
            var first = reader.FieldCount == 0 ? null : reader.GetName(0);
            while (await reader.ReadAsync(ct))
            {
                if (first == "batch_id")
                {
                    batches[reader.GetInt64(0)] = new BatchMoney(Dialect.NullableMoney(reader, 1), Dialect.Money(reader, 2), Dialect.Money(reader, 3));
                }
                else if (first == "provider")
                {
                    providers[reader.GetString(0)] = new ProviderLoad(reader.GetInt32(1), reader.GetDecimal(2), reader.GetDecimal(3));
                }
            }
        }
        while (await reader.NextResultAsync(ct));

        return (batches, providers);
    }

    /// <summary>
    /// Writes a round's decisions in one statement: queued edits with their reservation, held ones with the reason as
    /// their error, flagged ones cancelled; the batches' reservations, the counters and the history move with them. Returns
    /// the ids it wrote.
    /// </summary>
    private static async Task<HashSet<long>> WriteFeedAsync(
        NpgsqlConnection connection, List<FeedWrite> writes, string by, DateTimeOffset now, CancellationToken ct)
    {
        if (writes.Count == 0)
        {
            return [];
        }

        await using var command = new NpgsqlCommand(
            $"""
            WITH input AS (
                SELECT * FROM unnest(@id, @to, @reserved, @reason) AS i(id, to_state, reserved, reason)
            ), prev AS (
                SELECT j.id, j.batch_id, j.reserved_usd FROM jobs j JOIN input i ON i.id = j.id WHERE j.state = 'pending' ORDER BY j.id FOR UPDATE OF j
            ), moved AS (
                UPDATE jobs j SET state = i.to_state, reserved_usd = i.reserved, updated_at = @now,
                    error = CASE WHEN i.to_state = 'queued' THEN j.error ELSE i.reason END,
                    finished_at = CASE WHEN i.to_state = 'cancelled' THEN @now ELSE j.finished_at END
                FROM prev, input i WHERE j.id = prev.id AND i.id = prev.id
                RETURNING j.id, prev.batch_id, 'pending'::text AS from_state, j.state AS to_state, i.reason, j.reserved_usd - prev.reserved_usd AS reserved
            ), money AS (
                UPDATE batches b SET reserved_usd = b.reserved_usd + m.reserved
                FROM (SELECT batch_id, sum(reserved) AS reserved FROM moved GROUP BY batch_id ORDER BY batch_id) m
                WHERE b.id = m.batch_id AND m.reserved <> 0
                RETURNING b.id
            ), {CountMoves("moved", after: "money")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
                SELECT id, @now, from_state, to_state, reason, @by FROM moved ORDER BY id
            )
            SELECT id FROM moved
            """, connection);
        command.Parameters.AddWithValue("id", writes.Select(w => w.Edit.Id).ToArray());
        command.Parameters.AddWithValue("to", writes.Select(w => w.To.ToDbName()).ToArray());
        command.Parameters.AddWithValue("reserved", writes.Select(w => w.Reserved).ToArray());
        command.Parameters.Add(Array("reason", NpgsqlDbType.Text, writes.Select(w => (object?)w.Reason)));
        command.Parameters.AddWithValue("by", by);
        command.Parameters.AddWithValue("now", now);
        return [.. await ListAsync(command, r => r.GetInt64(0), ct)];
    }

    /// <summary>What a feeder round writes of one edit: its new state, its reservation, and the reason (held or cancelled).</summary>
    private readonly record struct FeedWrite(EditRecord Edit, EditState To, decimal Reserved, string? Reason);

    private static NpgsqlBatchCommand Statement(string sql, params (string Name, object Value)[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }
}

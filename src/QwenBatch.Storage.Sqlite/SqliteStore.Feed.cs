using Microsoft.Data.Sqlite;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>
/// The feeder's round and the poller's claim (IEditStore). Each is one immediate transaction: under SQLite's write lock
/// no other process takes the same edits, nor reads the money and load a round is deciding against.
/// </summary>
public sealed partial class SqliteStore
{
    /// <summary>What the history and the error of an operator's cancel say.</summary>
    internal const string CancelledByOperator = "cancelled by an operator";

    public async Task<IReadOnlyList<EditRecord>> FeedAsync(FeedRequest request, IFeedPolicy policy, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(request.Limit);
        if (request.Limit == 0)
        {
            return [];
        }

        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var taken = await TakeDueAsync(connection, tx, request, now, ct);
        if (taken.Count == 0)
        {
            return [];
        }

        // An edit flagged for cancel that came back to pending (a submit that never got out, a task the provider failed)
        // is not fed again: the operator's cancel stands. The policy decides the others.
        var flagged = taken.Where(e => e.CancelRequested).ToList();
        var candidates = taken.Where(e => !e.CancelRequested).ToList();
        var day = DayOf(now);
        var decisions = candidates.Count == 0 ? [] : policy.Decide(new FeedCandidates(candidates,
            await ReadMoneyAsync(connection, tx, candidates, ct), await ReadLoadAsync(connection, tx, candidates, now, ct), day));
        if (decisions.Count != candidates.Count)
        {
            throw new InvalidOperationException($"The feed policy decided {decisions.Count} edits of {candidates.Count}.");
        }

        var queued = new List<EditRecord>();
        foreach (var edit in flagged)
        {
            await WriteFeedAsync(connection, tx, edit, EditState.Cancelled, 0, CancelledByOperator, request.By, now, ct);
        }

        for (var i = 0; i < candidates.Count; i++)
        {
            var edit = candidates[i];
            switch (decisions[i])
            {
                case FeedDecision.Queue queue:
                    if (await WriteFeedAsync(connection, tx, edit, EditState.Queued, Micros(queue.ReserveUsd), null, request.By, now, ct))
                    {
                        queued.Add(edit with { State = EditState.Queued, ReservedUsd = queue.ReserveUsd, UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(now) });
                    }

                    break;
                case FeedDecision.Hold hold:
                    await WriteFeedAsync(connection, tx, edit, EditState.Held, 0, hold.Reason, request.By, now, ct);
                    break;
            }
        }

        await tx.CommitAsync(ct);
        return queued;
    }

    public async Task<IReadOnlyList<EditRecord>> ClaimPollsAsync(PollClaim claim, CancellationToken ct)
    {
        // The claim moves only the due time: the poll's own transition writes the edit (and its updated_at) afterwards, and a
        // poller that dies in between leaves the edit due again once the lease has passed. An edit flagged for cancel is
        // taken as a due one: the flag makes it due at once (the cancel, and every transition of a flagged edit), while a
        // clause of its own would hand it to every round, again and again, while one poller is sending its cancel.
        var now = _time.GetUtcNow();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        await using var due = Command(connection, tx,
            $"""
            SELECT {SqliteEditColumns} FROM jobs
            WHERE state = 'at_provider' AND due_at <= @now AND (@batch IS NULL OR batch_id = @batch)
            ORDER BY due_at, id
            LIMIT @limit
            """, ("now", Ms(now)), ("batch", claim.BatchId), ("limit", claim.Limit));
        var claimed = await ReadEditsAsync(due, ct);
        foreach (var edit in claimed)
        {
            await ExecuteAsync(connection, tx, "UPDATE jobs SET due_at = @until WHERE id = @id", ct, ("until", Ms(now + claim.Lease)), ("id", edit.Id));
        }

        await tx.CommitAsync(ct);
        return claimed;
    }

    public async Task<DateTimeOffset?> PullWaveForwardAsync(WavePull pull, CancellationToken ct)
    {
        // One guarded statement on the batch's edits at the provider: the guards are what make a lesson only ever bring a
        // poll sooner, and leave alone edits already on their poll schedule.
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            """
            UPDATE jobs SET due_at = submitted_at + @within
            WHERE batch_id = @batch AND state = 'at_provider' AND provider = @provider AND polls = 0 AND cancel_requested = 0
              AND coalesce(json_extract(spec, '$.n'), 1) = @n AND json_extract(spec, '$.size') IS @size
              AND due_at > submitted_at + @due_after AND (@due_before IS NULL OR due_at < @due_before)
            RETURNING due_at
            """,
            ("within", (long)pull.Within.TotalMilliseconds), ("due_after", (long)pull.DueAfter.TotalMilliseconds), ("due_before", Ms(pull.DueBefore)), ("batch", pull.BatchId),
            ("provider", pull.Provider), ("n", pull.N), ("size", pull.Size));
        var pulled = await ListAsync(command, r => r.GetInt64(0), ct);
        return pulled.Count == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(pulled.Min());
    }

    /// <summary>
    /// Up to the request's limit of due pending current edits, oldest due first; each provider named in its
    /// ProviderLimits gives at most its allowance.
    /// </summary>
    private static async Task<List<EditRecord>> TakeDueAsync(SqliteConnection connection, SqliteTransaction tx, FeedRequest request, long now, CancellationToken ct)
    {
        const string Due = "state = 'pending' AND due_at <= @now AND superseded_by IS NULL AND (@batch IS NULL OR batch_id = @batch)";
        var named = (request.ProviderLimits ?? new Dictionary<string, int>()).ToList();
        var (names, nameParameters) = InList("p", named.Select(p => p.Key).ToList());
        await using var free = Command(connection, tx,
            $"SELECT {SqliteEditColumns} FROM jobs WHERE {Due} AND provider NOT IN {names} ORDER BY due_at, id LIMIT @limit",
            [("now", now), ("batch", request.BatchId), ("limit", request.Limit), .. nameParameters]);
        var taken = await ReadEditsAsync(free, ct);
        foreach (var (provider, allowance) in named)
        {
            await using var capped = Command(connection, tx,
                $"SELECT {SqliteEditColumns} FROM jobs WHERE {Due} AND provider = @provider ORDER BY due_at, id LIMIT @limit",
                ("now", now), ("batch", request.BatchId), ("provider", provider), ("limit", Math.Max(0, Math.Min(allowance, request.Limit))));
            taken.AddRange(await ReadEditsAsync(capped, ct));
        }

        return taken.OrderBy(e => e.DueAt).ThenBy(e => e.Id).Take(request.Limit).ToList();
    }

    private static async Task<Dictionary<long, BatchMoney>> ReadMoneyAsync(SqliteConnection connection, SqliteTransaction tx, List<EditRecord> candidates, CancellationToken ct)
    {
        var (ids, parameters) = InList("b", candidates.Select(e => e.BatchId).Distinct().ToList());
        await using var command = Command(connection, tx, $"SELECT id, budget_micros, spent_micros, reserved_micros FROM batches WHERE id IN {ids}", parameters);
        return (await ListAsync(command, r => (Id: r.GetInt64(0), Money: new BatchMoney(Dialect.NullableMoney(r, 1), Dialect.Money(r, 2), Dialect.Money(r, 3))), ct))
            .ToDictionary(b => b.Id, b => b.Money);
    }

    /// <summary>Each provider's edits in flight, and its settled spend today and open reservations, read together.</summary>
    private static async Task<Dictionary<string, ProviderLoad>> ReadLoadAsync(
        SqliteConnection connection, SqliteTransaction tx, List<EditRecord> candidates, long now, CancellationToken ct)
    {
        var load = new Dictionary<string, ProviderLoad>(StringComparer.Ordinal);
        foreach (var provider in candidates.Select(e => e.Provider).Distinct())
        {
            await using var command = Command(connection, tx,
                """
                SELECT (SELECT count(*) FROM jobs WHERE provider = @provider AND state IN ('queued', 'submitting', 'at_provider')),
                       coalesce((SELECT spent_micros FROM spend_by_day WHERE day = @day AND provider = @provider), 0),
                       coalesce((SELECT sum(reserved_micros) FROM jobs WHERE provider = @provider AND reserved_micros <> 0), 0)
                """, ("provider", provider), ("day", now / MillisPerDay));
            load[provider] = (await ListAsync(command, r => new ProviderLoad((int)r.GetInt64(0), Usd(r.GetInt64(1)), Usd(r.GetInt64(2))), ct))[0];
        }

        return load;
    }

    /// <summary>
    /// One decided edit: its state, reservation and error, the batch's reservation, its history (counters by trigger).
    /// Guarded like every move (still pending), though under the write lock nothing can have moved it since it was taken.
    /// </summary>
    private static async Task<bool> WriteFeedAsync(
        SqliteConnection connection, SqliteTransaction tx, EditRecord edit, EditState to, long reservedMicros, string? reason, string by, long now, CancellationToken ct)
    {
        var written = await ExecuteAsync(connection, tx,
            """
            UPDATE jobs SET state = @to, reserved_micros = @reserved, updated_at = @now,
                error = CASE WHEN @to = 'queued' THEN error ELSE @reason END,
                finished_at = CASE WHEN @to = 'cancelled' THEN @now ELSE finished_at END
            WHERE id = @id AND state = 'pending'
            """, ct, ("id", edit.Id), ("to", to.ToDbName()), ("reserved", reservedMicros), ("reason", reason), ("now", now)) == 1;
        if (written)
        {
            await MoveReservedAsync(connection, tx, edit.BatchId, reservedMicros - Micros(edit.ReservedUsd), ct);
            await InsertHistoryAsync(connection, tx, edit.Id, now, EditState.Pending.ToDbName(), to.ToDbName(), reason, by, ct);
        }

        return written;
    }
}

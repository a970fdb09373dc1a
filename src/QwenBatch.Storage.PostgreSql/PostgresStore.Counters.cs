namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// The batch counters (batch_state_counts) moved by the statements that move edits, in the same statement. Migration 11
/// dropped the counters' update trigger: it ran on every UPDATE of jobs (claims and heartbeats included), captured the
/// statement's old and new rows and joined them, 8.7 % of the machine's CPU in the engine benchmark's profile. Inserts
/// and deletes (imports, staged chunks made rows, retention) keep their statement triggers. Every statement that changes
/// an edit's state must include <see cref="CountMoves"/>; the contract suite checks the counters after each kind of change.
/// </summary>
public sealed partial class PostgresStore
{
    /// <summary>
    /// A CTE named <c>counted</c> that moves the counters for the rows of <paramref name="moves"/> (a CTE with batch_id,
    /// from_state and to_state, text). The counter rows are upserted in (batch_id, state) order, so concurrent statements
    /// take their locks in the same order, and after the edit rows (the aggregate reads every moved row first).
    /// </summary>
    /// <param name="after">
    /// A CTE updating batch rows (with a RETURNING list) that must be done before any counter is locked: batch rows before
    /// counters, the order every statement took them in when a trigger moved the counters at the statement's end.
    /// </param>
    private static string CountMoves(string moves, string? after = null) => $"""
        counted AS (
            INSERT INTO batch_state_counts AS c (batch_id, state, count)
            SELECT batch_id, state, sum(delta) FROM (
                SELECT batch_id, from_state AS state, -1 AS delta FROM {moves} WHERE from_state <> to_state
                UNION ALL
                SELECT batch_id, to_state, 1 FROM {moves} WHERE from_state <> to_state
            ) m
            {(after is null ? "" : $"WHERE (SELECT count(*) FROM {after}) >= 0")}
            GROUP BY batch_id, state HAVING sum(delta) <> 0 ORDER BY batch_id, state
            ON CONFLICT (batch_id, state) DO UPDATE SET count = c.count + excluded.count
        )
        """;
}

using Microsoft.Data.Sqlite;
using static QwenBatch.Storage.EditRows;
using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Sqlite;

/// <summary>The edits of an import: the same rule as PostgreSQL's, one prepared statement per step inside the one transaction.</summary>
public sealed partial class SqliteStore
{
    private const int SqliteConstraint = 19;

    /// <summary>The error of an edit cancelled because a newer one replaced it; <see cref="SupersededPrefix"/> recognizes it.</summary>
    private const string SupersededPrefix = "superseded by job ";

    /// <summary>
    /// A new batch takes every edit as it comes (the unique index on an id's current edit refuses a duplicate id). A
    /// resumed batch compares each edit with its id's current edit: the same content is skipped; changed content becomes
    /// the id's current edit — a new one, or an older edit of that very content made current again — and the edit it
    /// displaces is superseded: cancelled if it had not been handed to Hangfire (pending or held), left to finish (keeping
    /// its history and files) if it had.
    /// </summary>
    private static async Task<(int Added, int Replaced)> ImportEditsAsync(
        SqliteConnection connection, SqliteTransaction tx, long batchId, long now, bool created, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct)
    {
        if (created)
        {
            return (await InsertNewJobsAsync(connection, tx, batchId, now, jobs, ct), 0);
        }

        await using var insert = Command(connection, tx,
            """
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at, revision, replaces)
            VALUES (@batch, @key, @hash, 'pending', @provider, @spec, @now, @now, @now, @revision, @replaces)
            """,
            ("batch", batchId), ("key", ""), ("hash", ""), ("provider", ""), ("spec", ""), ("now", now), ("revision", 1), ("replaces", null));

        // One prepared statement for every row, all in the one transaction: a 100k-row import is a single commit.
        insert.Prepare();
        await using var current = Command(connection, tx,
            "SELECT id, content_hash, state, reserved_micros FROM jobs WHERE batch_id = @batch AND key = @key AND superseded_by IS NULL",
            ("batch", batchId), ("key", ""));
        await using var known = Command(connection, tx,
            "SELECT id, state, request_id, error FROM jobs WHERE batch_id = @batch AND key = @key AND content_hash = @hash",
            ("batch", batchId), ("key", ""), ("hash", ""));
        var seen = new EditKeySet();
        int added = 0, replaced = 0;
        await foreach (var job in jobs.WithCancellation(ct))
        {
            insert.Parameters["@key"].Value = job.Key;
            insert.Parameters["@hash"].Value = job.ContentHash;
            insert.Parameters["@provider"].Value = job.Provider;
            insert.Parameters["@spec"].Value = StoreJson.Write(job.Spec);
            if (!seen.Add(job.Key))
            {
                throw new DuplicateJobKeyException($"An import named the job id '{job.Key}' twice; ids must be unique within a batch. Nothing was imported.");
            }

            current.Parameters["@key"].Value = job.Key;
            var cur = (await ListAsync(current, r => (Id: r.GetInt64(0), Hash: r.GetString(1), State: r.GetString(2), Reserved: r.GetInt64(3)), ct)).SingleOrDefault();
            if (cur != default && cur.Hash == job.ContentHash)
            {
                continue;
            }

            known.Parameters["@key"].Value = job.Key;
            known.Parameters["@hash"].Value = job.ContentHash;
            var old = (await ListAsync(known, r => (Id: r.GetInt64(0), State: r.GetString(1), Submitted: !r.IsDBNull(2), Error: r.IsDBNull(3) ? null : r.GetString(3)), ct)).SingleOrDefault();
            long? displaced = cur == default ? null : cur.Id;
            if (displaced is { } curId)
            {
                // Out of the way first (the unique index allows one current job per id); the successor is set below.
                await ExecuteAsync(connection, tx, $"UPDATE jobs SET superseded_by = 0 WHERE id = {curId}", ct);
            }

            long successor;
            if (old == default)
            {
                var revision = await MaxRevisionAsync(connection, tx, batchId, job.Key, ct) + 1;
                insert.Parameters["@revision"].Value = revision;
                insert.Parameters["@replaces"].Value = (object?)displaced ?? DBNull.Value;
                await insert.ExecuteNonQueryAsync(ct);
                insert.Parameters["@revision"].Value = 1;
                insert.Parameters["@replaces"].Value = DBNull.Value;
                successor = await LastIdAsync(connection, tx, ct);
            }
            else
            {
                successor = old.Id;
                var requeue = old.State == "cancelled" && !old.Submitted && old.Error?.StartsWith(SupersededPrefix, StringComparison.Ordinal) == true;
                await using var revive = Command(connection, tx,
                    requeue
                        ? "UPDATE jobs SET superseded_by = NULL, replaces = @replaces, updated_at = @now, state = 'pending', due_at = @now, attempt = 0, error = NULL, finished_at = NULL WHERE id = @id"
                        : "UPDATE jobs SET superseded_by = NULL, replaces = @replaces, updated_at = @now WHERE id = @id",
                    ("replaces", (object?)displaced), ("now", now), ("id", old.Id));
                await revive.ExecuteNonQueryAsync(ct);
                await InsertHistoryAsync(connection, tx, old.Id, now, old.State, requeue ? "pending" : old.State,
                    "current again: its manifest row is back to this content" + (displaced is { } d ? $" (replacing job {d})" : ""), null, ct);
            }

            added++;
            if (displaced is { } id)
            {
                await SupersedeAsync(connection, tx, batchId, now, (id, cur.State, cur.Reserved), successor, ct);
                replaced++;
            }
        }

        return (added, replaced);
    }

    /// <summary>Rows per INSERT of a new batch's jobs.</summary>
    private const int RowsPerInsert = 16;

    /// <summary>
    /// A new batch's jobs, <see cref="RowsPerInsert"/> rows per INSERT. Inside a transaction SQLite keeps a copy of every
    /// page a statement changes, so that a failed statement can be undone alone: with a row per statement it copied the
    /// table's and five indexes' pages for every job — 100k jobs took 4.8-5.2 s, a third of it writing those copies to a
    /// temporary file; 16 rows a statement take 2.0-2.6 s. More rows do not pay: Microsoft.Data.Sqlite finds each
    /// parameter by name in the statement's list, so binding grows with the square of the parameters (32 rows: 2.2-2.3 s).
    /// A duplicate id still fails its statement on the unique index, and the whole import with it.
    /// </summary>
    private static async Task<int> InsertNewJobsAsync(
        SqliteConnection connection, SqliteTransaction tx, long batchId, long now, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct)
    {
        await using var full = NewJobsInsert(connection, tx, batchId, now, RowsPerInsert);
        full.Command.Prepare();
        var pending = new List<NewEdit>(RowsPerInsert);
        var added = 0;
        await foreach (var job in jobs.WithCancellation(ct))
        {
            pending.Add(job);
            if (pending.Count == RowsPerInsert)
            {
                added += await full.ExecuteAsync(pending, ct);
                pending.Clear();
            }
        }

        if (pending.Count > 0)
        {
            await using var rest = NewJobsInsert(connection, tx, batchId, now, pending.Count);
            added += await rest.ExecuteAsync(pending, ct);
        }

        return added;
    }

    private static NewJobsStatement NewJobsInsert(SqliteConnection connection, SqliteTransaction tx, long batchId, long now, int rows)
    {
        var values = string.Join(", ", Enumerable.Range(0, rows).Select(i => $"(@batch, @k{i}, @h{i}, 'pending', @p{i}, @s{i}, @now, @now, @now, 1)"));
        var command = Command(connection, tx,
            $"INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at, revision) VALUES {values}",
            ("batch", batchId), ("now", now));
        var parameters = new SqliteParameter[rows * NewJobsStatement.Fields.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            parameters[i] = command.Parameters.Add($"@{NewJobsStatement.Fields[i % NewJobsStatement.Fields.Length]}{i / NewJobsStatement.Fields.Length}", SqliteType.Text);
        }

        return new NewJobsStatement(command, parameters);
    }

    /// <summary>An INSERT of a fixed number of new jobs, with its parameters row by row in <see cref="Fields"/> order.</summary>
    private sealed class NewJobsStatement(SqliteCommand command, SqliteParameter[] parameters) : IAsyncDisposable
    {
        /// <summary>Each row's parameters: key, content hash, provider, spec.</summary>
        public static readonly string[] Fields = ["k", "h", "p", "s"];

        public SqliteCommand Command { get; } = command;

        public Task<int> ExecuteAsync(List<NewEdit> jobs, CancellationToken ct)
        {
            for (var i = 0; i < jobs.Count; i++)
            {
                var row = parameters.AsSpan(i * Fields.Length, Fields.Length);
                row[0].Value = jobs[i].Key;
                row[1].Value = jobs[i].ContentHash;
                row[2].Value = jobs[i].Provider;
                row[3].Value = StoreJson.Write(jobs[i].Spec);
            }

            return Command.ExecuteNonQueryAsync(ct);
        }

        public ValueTask DisposeAsync() => Command.DisposeAsync();
    }

    /// <summary>Points the displaced edit at its successor; not yet handed to Hangfire, it is cancelled and gives back its reservation.</summary>
    private static async Task SupersedeAsync(SqliteConnection connection, SqliteTransaction tx, long batchId, long now, (long Id, string State, long Reserved) job, long successor, CancellationToken ct)
    {
        var cancel = job.State is "pending" or "held";
        await using var update = Command(connection, tx,
            cancel
                ? """
                  UPDATE jobs SET superseded_by = @successor, updated_at = @now, state = 'cancelled', reserved_micros = 0,
                      finished_at = @now, error = @error WHERE id = @id
                  """
                : "UPDATE jobs SET superseded_by = @successor, updated_at = @now WHERE id = @id",
            ("successor", successor), ("now", now), ("id", job.Id),
            ("error", $"{SupersededPrefix}{successor}: its manifest row changed before it was submitted"));
        await update.ExecuteNonQueryAsync(ct);
        if (cancel && job.Reserved != 0)
        {
            await ExecuteAsync(connection, tx, $"UPDATE batches SET reserved_micros = reserved_micros - {job.Reserved} WHERE id = {batchId}", ct);
        }

        await InsertHistoryAsync(connection, tx, job.Id, now, job.State, cancel ? "cancelled" : job.State,
            $"{SupersededPrefix}{successor}: its manifest row changed" + (cancel ? ", so it will not be submitted" : "; it finishes and keeps its files"), null, ct);
    }

    private static async Task<int> MaxRevisionAsync(SqliteConnection connection, SqliteTransaction tx, long batchId, string key, CancellationToken ct)
    {
        await using var command = Command(connection, tx, "SELECT coalesce(max(revision), 0) FROM jobs WHERE batch_id = @batch AND key = @key", ("batch", batchId), ("key", key));
        return Convert.ToInt32(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<long> LastIdAsync(SqliteConnection connection, SqliteTransaction tx, CancellationToken ct)
    {
        await using var command = Command(connection, tx, "SELECT last_insert_rowid()");
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}

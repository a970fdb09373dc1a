using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Npgsql;
using NpgsqlTypes;
using QwenBatch.Batches;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// Large imports, staged (migration 10). A new batch of more than one chunk of edits is written as one <c>job_chunks</c>
/// row per chunk — a JSON array of its edits — instead of a <c>jobs</c> row per edit: the import transaction then costs
/// about what a raw COPY of the manifest costs, where a row per edit paid six indexes, a foreign key check and the text
/// filter's trigram entries for every edit (measured: 5 s of a 100k-row import's 5.6 s). A chunk becomes rows when work
/// needs them: a feeder round that finds fewer due edits than it may take expands the next chunks (in import order,
/// skipping chunks another feeder is expanding), and anything that needs a batch's every edit (its edit list, a cancel, a
/// resumed import) expands the batch's remaining chunks first. Staged edits are pending edits: the counters include them
/// from the import on, so progress, status and "is the batch settled" never miss them.
/// </summary>
public sealed partial class PostgresStore
{
    /// <summary>
    /// Edits per staged chunk, at most (an import's chunks also close at <see cref="EncodedJobs.MaxChunkBytes"/>): a
    /// feeder's expansion inserts this many at once (tens of milliseconds).
    /// </summary>
    public const int DefaultStagedChunkSize = 1000;

    /// <summary>How often a feeder that believes nothing is staged looks anyway (another process's import).</summary>
    private static readonly TimeSpan StagedRecheck = TimeSpan.FromSeconds(30);

    /// <summary>
    /// At most this many staged edits (as chunks of the largest size; fewer when the edits are large) are expanded for one
    /// look at the edit list (about a second's work): a freshly imported batch lists every edit at once, a larger one fills
    /// in as feeders take them (its counts include every edit meanwhile).
    /// </summary>
    private const int MaxExpandedForList = 20_000;

    // Staging may have happened since this process last found nothing staged: counted up by this process's imports. Another
    // process's import is seen by NextDueAsync (which reads the chunks, as a feeder does when it has nothing to do) or after
    // StagedRecheck. "Nothing staged" is remembered per feed scope (a batch, or all) with the count it saw, so an import
    // that commits while an expansion runs is not lost.
    private readonly ConcurrentDictionary<long, (long Signals, DateTimeOffset At)> _nothingStaged = new();
    private long _stagedSignals;

    private void SignalStaged() => Interlocked.Increment(ref _stagedSignals);

    private void ForgetNothingStaged(long? batchId) => _nothingStaged.TryRemove(batchId ?? 0, out _);

    private bool MayHaveStaged(long? batchId, DateTimeOffset now) =>
        !_nothingStaged.TryGetValue(batchId ?? 0, out var seen) || seen.Signals != Interlocked.Read(ref _stagedSignals) || now - seen.At >= StagedRecheck;

    /// <summary>
    /// A new batch's edits: one chunk or fewer go straight into jobs with binary COPY (small batches are rows at once);
    /// more are staged a chunk per row — as they come, or as an import already encoded them (<see cref="EncodedJobs"/>).
    /// Either way an id named twice refuses the whole import.
    /// </summary>
    private async Task<int> CopyNewBatchAsync(NpgsqlConnection connection, long batchId, DateTimeOffset now, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct)
    {
        await using var chunks = Chunks(jobs, _stagedChunkSize, ct).GetAsyncEnumerator(ct);
        var first = new List<(byte[] Json, int Jobs)>();
        var count = 0;
        while (count <= _stagedChunkSize && await chunks.MoveNextAsync())
        {
            first.Add(chunks.Current);
            count += chunks.Current.Jobs;
        }

        if (count <= _stagedChunkSize)
        {
            return await CopyEditsAsync(connection, batchId, now, first.SelectMany(c => EncodedJobs.Decode(c.Json)).ToAsyncEnumerable(), ct);
        }

        return await StageAsync(connection, batchId, now, Rest(), ct);

        async IAsyncEnumerable<(byte[] Json, int Jobs)> Rest()
        {
            foreach (var chunk in first)
            {
                yield return chunk;
            }

            while (await chunks.MoveNextAsync())
            {
                yield return chunks.Current;
            }
        }
    }

    /// <summary>
    /// Jobs as staged chunks: an import's <see cref="EncodedJobs"/> as they are (kept or live), anything else encoded as it
    /// comes (an id named twice is refused either way: the writer refuses it).
    /// </summary>
    private static async IAsyncEnumerable<(byte[] Json, int Jobs)> Chunks(IAsyncEnumerable<NewEdit> jobs, int chunkSize, [EnumeratorCancellation] CancellationToken ct)
    {
        if (jobs is EncodedJobs encoded)
        {
            await foreach (var chunk in encoded.ChunksAsync(ct))
            {
                yield return chunk;
            }

            yield break;
        }

        using var writer = new EncodedJobs.Writer(chunkSize);
        await foreach (var job in jobs.WithCancellation(ct))
        {
            writer.Add(job);
            while (writer.TryTakeChunk(out var chunk))
            {
                yield return chunk;
            }
        }

        writer.CloseChunk();
        while (writer.TryTakeChunk(out var chunk))
        {
            yield return chunk;
        }
    }

    /// <summary>Writes the chunks into job_chunks and counts their edits as pending.</summary>
    private async Task<int> StageAsync(NpgsqlConnection connection, long batchId, DateTimeOffset now, IAsyncEnumerable<(byte[] Json, int Jobs)> chunks, CancellationToken ct)
    {
        var count = await CopyChunksAsync(connection, "job_chunks", batchId, now, chunks, ct);

        // Staged edits are pending edits from now on; their expansion takes them off this count as its insert adds them.
        await using var counted = new NpgsqlCommand(
            """
            INSERT INTO batch_state_counts AS c (batch_id, state, count) VALUES (@batch, 'pending', @count)
            ON CONFLICT (batch_id, state) DO UPDATE SET count = c.count + excluded.count
            """, connection);
        counted.Parameters.AddWithValue("batch", batchId);
        counted.Parameters.AddWithValue("count", (long)count);
        await counted.ExecuteNonQueryAsync(ct);
        SignalStaged();
        return count;
    }

    /// <summary>Binary COPY of chunks into <paramref name="table"/> (job_chunks, or a temporary table shaped like it); how many jobs.</summary>
    private static async Task<int> CopyChunksAsync(
        NpgsqlConnection connection, string table, long batchId, DateTimeOffset now, IAsyncEnumerable<(byte[] Json, int Jobs)> chunks, CancellationToken ct)
    {
        var count = 0;
        await using var copy = await connection.BeginBinaryImportAsync($"COPY {table} (batch_id, jobs, due_at, payload) FROM STDIN (FORMAT BINARY)", ct);
        await foreach (var (json, jobs) in chunks.WithCancellation(ct))
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(batchId, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(jobs, NpgsqlDbType.Integer, ct);
            await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(json, NpgsqlDbType.Bytea, ct);
            count += jobs;
        }

        await copy.CompleteAsync(ct);
        return count;
    }

    /// <summary>
    /// Turns up to <paramref name="chunks"/> staged chunks (of one batch, or of any) into jobs rows, oldest first, in one
    /// statement; returns how many edits that made. <paramref name="skipLocked"/>: a feeder passes over chunks another one
    /// is expanding; a caller that needs every edit of a batch waits for them instead (they are gone when it gets them).
    /// </summary>
    private static async Task<int> ExpandStagedAsync(NpgsqlConnection connection, long? batchId, int chunks, bool skipLocked, CancellationToken ct)
    {
        // The counters' insert trigger counts the new rows as pending; they already were (as staged), so the statement
        // takes them off first. Rows keep the import's time as created, updated and due, so the feeding order is unchanged.
        await using var command = new NpgsqlCommand(
            $"""
            WITH chunk AS (
                DELETE FROM job_chunks WHERE id IN (
                    SELECT id FROM job_chunks WHERE @batch::bigint IS NULL OR batch_id = @batch
                    ORDER BY id LIMIT @chunks FOR UPDATE {(skipLocked ? "SKIP LOCKED" : "")})
                RETURNING id, batch_id, jobs, due_at, payload
            ), uncounted AS (
                UPDATE batch_state_counts c SET count = c.count - s.n
                FROM (SELECT batch_id, sum(jobs) AS n FROM chunk GROUP BY batch_id) s
                WHERE c.batch_id = s.batch_id AND c.state = 'pending'
            ), expanded AS (
                INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at)
                SELECT chunk.batch_id, r.k, r.h, 'pending', r.p, r.s, chunk.due_at, chunk.due_at, chunk.due_at
                FROM chunk CROSS JOIN LATERAL {ChunkJobs("chunk", "jsonb")}
                ORDER BY chunk.id, r.ord
                RETURNING 1
            )
            SELECT count(*)::int FROM expanded
            """, connection);
        command.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Bigint) { Value = (object?)batchId ?? DBNull.Value });
        command.Parameters.AddWithValue("chunks", chunks);
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// The jobs of the chunk rows aliased <paramref name="chunk"/> (job_chunks or the resume's copy of it), unpacked on
    /// the server as <c>r (k, h, p, s, ord)</c>: key, content hash, provider, spec as <paramref name="specType"/>, place in
    /// the chunk. The one place the server reads the format <see cref="EncodedJobs"/> writes.
    /// </summary>
    private static string ChunkJobs(string chunk, string specType) =>
        $"ROWS FROM (json_to_recordset(convert_from({chunk}.payload, 'UTF8')::json) AS (k text, h text, p text, s {specType})) WITH ORDINALITY AS r (k, h, p, s, ord)";

    /// <summary>Expands every chunk still staged for <paramref name="batchId"/>, waiting for any a feeder round is expanding.</summary>
    private static Task<int> ExpandBatchAsync(NpgsqlConnection connection, long batchId, CancellationToken ct) =>
        ExpandStagedAsync(connection, batchId, int.MaxValue, skipLocked: false, ct);

    private async Task ExpandBatchAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await ExpandBatchAsync(connection, batchId, ct);
    }

    /// <summary>
    /// Before the edit list: expands up to <see cref="MaxExpandedForList"/> staged edits (of its batch, when it has one). It
    /// looks every time (a dashboard need not listen for imports; on an empty job_chunks the look is a few microseconds).
    /// </summary>
    private async Task ExpandForListAsync(long? batchId, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await ExpandStagedAsync(connection, batchId, Math.Max(1, MaxExpandedForList / _stagedChunkSize), skipLocked: true, ct);
    }

    /// <summary>
    /// Inside a feeder round that came back short: expands enough staged chunks for what it could not take, if anything
    /// may be staged; true when edits were made (take again). The rows are the round's own until it commits, so no other
    /// feeder takes them first. A look that finds nothing costs one statement, and only then.
    /// </summary>
    private async Task<bool> TryExpandForFeedAsync(NpgsqlConnection connection, long? batchId, int missing, DateTimeOffset now, CancellationToken ct)
    {
        if (!MayHaveStaged(batchId, now))
        {
            return false;
        }

        var signals = Interlocked.Read(ref _stagedSignals);
        var chunks = (missing + _stagedChunkSize - 1) / _stagedChunkSize;
        var made = await ExpandStagedAsync(connection, batchId, chunks, skipLocked: true, ct);
        if (made == 0)
        {
            _nothingStaged[batchId ?? 0] = (signals, now);
        }

        return made > 0;
    }
}

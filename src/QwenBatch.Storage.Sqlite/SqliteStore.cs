using System.Data.Common;
using Microsoft.Data.Sqlite;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>
/// QwenBatch's own tables in one SQLite file (WAL), every store role in one object: the embedded store of <c>run</c>,
/// beside Hangfire.InMemory. Writes are serialized by SQLite's write lock (transactions begin immediately), so several
/// processes on one file stay correct and a read-then-write inside a transaction cannot race. Times are unix
/// milliseconds, money is integer micro-dollars. The files of this class are split by role.
/// </summary>
public sealed partial class SqliteStore : IStore
{
    private const decimal MicrosPerUsd = 1_000_000m;
    private const long MillisPerDay = 86_400_000;

    /// <summary>The edit columns as this store names them (money in micro-dollars), in <see cref="EditColumns"/> order.</summary>
    private const string SqliteEditColumns =
        "id, batch_id, key, content_hash, state, provider, spec, request_id, attempt, accepted_submits, uncertain_submits, polls, "
        + "due_at, hangfire_job, updated_at, outputs, files, cost_micros, error, created_at, submitted_at, finished_at, "
        + "reserved_micros, cancel_requested, started_at, revision, replaces, superseded_by";

    private const string SqliteBatchColumns =
        "id, name, source, provider, storage_dir, created_at, budget_micros, spent_micros, reserved_micros, cancel_requested_at, failure";

    private static readonly SqliteDialect Dialect = new();
    private readonly string _connectionString;
    private readonly TimeProvider _time;

    static SqliteStore() => SQLitePCL.Batteries_V2.Init();

    public SqliteStore(string path, TimeProvider time)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = 30,
        }.ToString();
        _time = time;
    }

    public ValueTask DisposeAsync()
    {
        // Only this file's pool: clearing every pool would pull connections from under other stores in the process.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }

    private long NowMs() => Ms(_time.GetUtcNow());

    private async Task<SqliteConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        return connection;
    }

    /// <summary>An immediate transaction: SQLite's write lock from the start, so what it reads stays true until it commits.</summary>
    private static async Task<SqliteTransaction> BeginAsync(SqliteConnection connection, CancellationToken ct) =>
        (SqliteTransaction)await connection.BeginTransactionAsync(ct);

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue("@" + name, value ?? DBNull.Value);
        }

        return command;
    }

    private static async Task<int> ExecuteAsync(SqliteConnection connection, SqliteTransaction? tx, string sql, CancellationToken ct, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(connection, tx, sql, parameters);
        return await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task InsertHistoryAsync(
        SqliteConnection connection, SqliteTransaction tx, long editId, long at, string? from, string to, string? reason, string? by, CancellationToken ct) =>
        await ExecuteAsync(connection, tx,
            "INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id) VALUES (@edit, @at, @from, @to, @reason, @by)", ct,
            ("edit", editId), ("at", at), ("from", from), ("to", to), ("reason", reason), ("by", by));

    /// <summary>Moves a batch's reservation by <paramref name="micros"/> (negative to release).</summary>
    private static async Task MoveReservedAsync(SqliteConnection connection, SqliteTransaction tx, long batchId, long micros, CancellationToken ct)
    {
        if (micros != 0)
        {
            await ExecuteAsync(connection, tx, "UPDATE batches SET reserved_micros = reserved_micros + @micros WHERE id = @batch", ct, ("micros", micros), ("batch", batchId));
        }
    }

    /// <summary>States as a SQL list of literals: a partial index is used only when the query names its states as constants.</summary>
    private static string StateList(IEnumerable<EditState> states) => "(" + string.Join(", ", states.Select(s => $"'{s.ToDbName()}'")) + ")";

    /// <summary>A numbered parameter list (<c>@p0, @p1, …</c>) for an IN over <paramref name="values"/>, with its parameters.</summary>
    private static (string Sql, (string Name, object? Value)[] Parameters) InList<T>(string prefix, IReadOnlyList<T> values) =>
        ("(" + string.Join(", ", values.Select((_, i) => $"@{prefix}{i}")) + ")", values.Select((v, i) => ($"{prefix}{i}", (object?)v)).ToArray());

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static long? Ms(DateTimeOffset? time) => time?.ToUnixTimeMilliseconds();

    private static long Micros(decimal usd) => (long)decimal.Round(usd * MicrosPerUsd);

    private static decimal Usd(long micros) => micros / MicrosPerUsd;

    private static DateOnly DayOf(long ms) => DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + (int)(ms / MillisPerDay));

    private static Task<List<EditRecord>> ReadEditsAsync(SqliteCommand command, CancellationToken ct) => ListAsync(command, r => ReadEdit(r, Dialect), ct);

    private sealed class SqliteDialect : RowDialect
    {
        public override DateTimeOffset Time(DbDataReader reader, int ordinal) => DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(ordinal));

        public override decimal Money(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? 0m : reader.GetInt64(ordinal) / MicrosPerUsd;

        public override bool Bool(DbDataReader reader, int ordinal) => reader.GetInt64(ordinal) != 0;
    }
}

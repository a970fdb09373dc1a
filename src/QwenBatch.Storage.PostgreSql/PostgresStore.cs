using System.Data.Common;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using QwenBatch.Edits;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// QwenBatch's own tables on PostgreSQL, every store role in one object: guarded transitions that move the edit, its
/// history, the batch counters and the money in one statement; the feeder's and the poller's claims with
/// <c>FOR UPDATE SKIP LOCKED</c>; large imports staged a chunk per row. Hangfire's tables (schema <c>hangfire</c>) belong
/// to Hangfire.PostgreSql: nothing here reads or writes them. The files of this class are split by role.
/// </summary>
public sealed partial class PostgresStore : IStore
{
    /// <summary>Statements each pooled connection keeps prepared (Npgsql's <c>Max Auto Prepare</c>) unless the connection string says.</summary>
    public const int AutoPreparedStatements = 64;

    private static readonly PostgresDialect Dialect = new();
    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _time;
    private readonly ILogger<PostgresStore> _logger;
    private readonly int _stagedChunkSize;

    /// <param name="stagedChunkSize">Edits per staged chunk of a large import (see PostgresStore.Staging); tests make it small.</param>
    public PostgresStore(string connectionString, TimeProvider time, ILogger<PostgresStore> logger, int stagedChunkSize = DefaultStagedChunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stagedChunkSize, 1);
        _stagedChunkSize = stagedChunkSize;

        // No reset on close: Npgsql would otherwise send DISCARD ALL each time a pooled connection is reused, a statement
        // (and a commit) per store call. The store keeps no session state on pooled connections (temporary tables drop at
        // commit, locks and settings are transaction-scoped), so there is nothing to reset; keep it so: session settings
        // only with SET LOCAL or set_config(…, true) inside a transaction.
        _dataSource = NpgsqlDataSource.Create(Pooled(connectionString));
        _time = time;
        _logger = logger;
    }

    /// <summary>The pool's connection string: no reset on close, and statements prepared unless the user said otherwise.</summary>
    internal static string Pooled(string connectionString)
    {
        var pooled = new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true };

        // Statements used again and again (transitions, feeds, poll claims) are prepared on each pooled connection:
        // parsing, analysing and planning the transition statement cost PostgreSQL more than running it (a third of the
        // machine's CPU in the engine benchmark's profile). Behind PgBouncer in transaction mode older than 1.21 (no
        // prepared statements), the connection string says "Max Auto Prepare=0", and that is kept.
        var said = new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(key => string.Equals(key.Replace(" ", "", StringComparison.Ordinal), "MaxAutoPrepare", StringComparison.OrdinalIgnoreCase));
        if (!said)
        {
            pooled.MaxAutoPrepare = AutoPreparedStatements;
        }

        return pooled.ConnectionString;
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private DateOnly Today() => DateOnly.FromDateTime(_time.GetUtcNow().UtcDateTime);

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    /// <summary>States as a SQL list of literals: a partial index is used only when the query names its states as constants.</summary>
    private static string StateList(IEnumerable<EditState> states) => "(" + string.Join(", ", states.Select(s => $"'{s.ToDbName()}'")) + ")";

    /// <summary>An array parameter whose elements may be null (SQL NULL).</summary>
    private static NpgsqlParameter Array(string name, NpgsqlDbType element, IEnumerable<object?> values) =>
        new(name, NpgsqlDbType.Array | element) { Value = values.Select(v => v ?? DBNull.Value).ToArray() };

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter Money(string name, decimal? value) => new(name, NpgsqlDbType.Numeric) { Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter BatchId(long? batchId) => new("batch", NpgsqlDbType.Bigint) { Value = (object?)batchId ?? DBNull.Value };

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied migration {Version}: {Name}")]
    private partial void LogMigrated(int version, string name);

    private sealed class PostgresDialect : RowDialect
    {
        public override DateTimeOffset Time(DbDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

        public override decimal Money(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? 0m : reader.GetDecimal(ordinal);
    }
}

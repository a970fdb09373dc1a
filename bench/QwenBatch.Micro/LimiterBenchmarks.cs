using BenchmarkDotNet.Attributes;
using QwenBatch.Storage;
using QwenBatch.Storage.Sqlite;

namespace QwenBatch.Micro;

/// <summary>
/// One booking of the shared request allowance (the GCRA reservation every provider request makes,
/// <see cref="IFlowControlStore.ReserveRequestAsync"/>) on PostgreSQL and on SQLite, with a 1 µs interval so it never has to
/// wait: the cost of the booking itself. Baseline: <c>SELECT 1</c> on the same PostgreSQL server.
/// </summary>
public class LimiterBenchmarks
{
    private static readonly RequestReservation Reservation = new("micro", TimeSpan.FromTicks(10), 1, TimeSpan.FromSeconds(20));
    private MicroDatabase _db = null!;
    private SqliteStore _sqlite = null!;
    private string _sqliteDir = null!;

    [GlobalSetup]
    public void Setup()
    {
        _db = MicroDatabase.CreateAsync(jobs: 0).GetAwaiter().GetResult();
        _sqliteDir = Directory.CreateTempSubdirectory("qwenbatch-micro-sqlite-").FullName;
        _sqlite = new SqliteStore(Path.Combine(_sqliteDir, "qwenbatch.db"), TimeProvider.System);
        _sqlite.MigrateAsync(CancellationToken.None).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _db.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _sqlite.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_sqliteDir, recursive: true);
    }

    [Benchmark(Baseline = true, Description = "SELECT 1 round trip, PostgreSQL")]
    public async Task<object?> SelectOne()
    {
        await using var command = _db.Raw.CreateCommand("SELECT 1");
        return await command.ExecuteScalarAsync();
    }

    [Benchmark(Description = "ReserveRequestAsync, PostgreSQL")]
    public Task<TimeSpan?> ReservePostgres() => _db.Store.ReserveRequestAsync(Reservation, CancellationToken.None);

    [Benchmark(Description = "ReserveRequestAsync, SQLite")]
    public Task<TimeSpan?> ReserveSqlite() => _sqlite.ReserveRequestAsync(Reservation, CancellationToken.None);
}

using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Manifests;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

// Manifest import benchmark: a generated N-row CSV validated and imported into PostgreSQL by QwenBatch the way `run`
// does it (one streamed validating pass on two threads that share the planning, its chunks of planned jobs
// binary-COPYed into the import transaction as they are ready — staged a chunk of 1,000 jobs per row for a batch that
// large),
// against a raw text COPY of the same file into a plain table. Runs alternate so both see the same machine state.
// Usage: dotnet run -c Release --project bench/QwenBatch.Bench -- [rows=100000] [rounds=3] [connection string]
// The fleet benchmark (flow control): dotnet run -c Release --project bench/QwenBatch.Bench -- fleet [jobs] [workers] [rps]
// The engine against bare Hangfire:   dotnet run -c Release --project bench/QwenBatch.Bench -- engine [edits=2000] [workers=32] [idle seconds=60] [rounds=3]
// The retention benchmark:             dotnet run -c Release --project bench/QwenBatch.Bench -- retention [rows=1000000] [chunk=1000]
// The dashboard benchmark:             dotnet run -c Release --project bench/QwenBatch.Bench -- dashboard [jobs=1000000] [requests=40]
// The race against the WaveSpeed SDK:  dotnet run -c Release --project bench/QwenBatch.Bench -- sdk-race [jobs] [concurrency] [latency] [rps] [rounds] [sqlite|postgres]
// Webhooks against polling (and the SDK): dotnet run -c Release --project bench/QwenBatch.Bench -- webhook-race [jobs] [concurrency] [latency] [rps]
// Worker memory, 10k vs 1k jobs:       dotnet run -c Release --project bench/QwenBatch.Bench -- memory [jobs] [baseline jobs] [output MB]
// Bytes sent to WaveSpeed, data URIs against uploads: dotnet run -c Release --project bench/QwenBatch.Bench -- upload-bytes [photos=200] [photo KB=1500]
if (args.FirstOrDefault() == "fleet")
{
    return await QwenBatch.Bench.FleetBenchmark.RunAsync(args[1..]);
}

if (args.FirstOrDefault() == "retention")
{
    return await QwenBatch.Bench.RetentionBenchmark.RunAsync(args[1..]);
}

if (args.FirstOrDefault() == "dashboard")
{
    return await QwenBatch.Bench.DashboardBenchmark.RunAsync(args[1..]);
}

if (args.FirstOrDefault() == "sdk-race")
{
    return await QwenBatch.Bench.SdkRaceBenchmark.RunAsync(args[1..]);
}

if (args.FirstOrDefault() == "webhook-race")
{
    return await QwenBatch.Bench.WebhookRaceBenchmark.RunAsync(args[1..]);
}

if (args.FirstOrDefault() == "upload-bytes")
{
    return await QwenBatch.Bench.UploadBytesBenchmark.RunAsync(args[1..]);
}

if (args.FirstOrDefault() == "memory")
{
    return await QwenBatch.Bench.MemoryBenchmark.RunAsync(args[1..]);
}

if (args.FirstOrDefault() == "engine")
{
    return await QwenBatch.Bench.EngineBenchmark.RunAsync(args[1..]);
}

var rows = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
var connectionString = args.Length > 2 ? args[2] : await (await PostgresServer.GetAsync()).CreateDatabaseAsync("bench");

var dir = Directory.CreateTempSubdirectory("qwenbatch-bench-").FullName;
var manifest = Path.Combine(dir, "products.csv");
await GenerateAsync(manifest, rows);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Manifest: {rows} rows, {new FileInfo(manifest).Length / 1024.0 / 1024.0:0.0} MB"));

await using var store = new PostgresStore(connectionString, TimeProvider.System, NullLogger<PostgresStore>.Instance);
await store.MigrateAsync(CancellationToken.None);
await using var dataSource = NpgsqlDataSource.Create(connectionString);
await ExecuteAsync(dataSource, "CREATE TABLE IF NOT EXISTS raw_rows (id text, prompt text, images text, n int, sku text)");

// Autovacuum off on this database's tables: every minute or so it went through the tables the previous rounds filled,
// using half a second of the server's CPU during whichever timed run it coincided with, on either side.
await ExecuteAsync(dataSource, """
    DO $$ DECLARE t text; BEGIN
        FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
            EXECUTE format('ALTER TABLE %I SET (autovacuum_enabled = off, toast.autovacuum_enabled = off)', t);
        END LOOP;
    END $$
    """);

var raw = new List<double>();
var ours = new List<double>();
var direct = new List<double>();
var checkedPath = new List<double>();
var expanded = new List<double>();

// The raw COPY's turn in a round, after the same settling as the import's.
async Task RawRoundAsync()
{
    await SettleAsync(dataSource);
    raw.Add(await RawCopyAsync(dataSource, manifest));
}

for (var round = 1; round <= rounds; round++)
{
    await ExecuteAsync(dataSource, "TRUNCATE raw_rows; TRUNCATE batches, jobs CASCADE");

    // Each timed run starts with nothing left to write back: the previous round's expansion and store-only imports wrote
    // a few hundred megabytes, and on this machine's disk their writeback stalled whichever run came next by up to a
    // second. The two take turns going first.
    if (round % 2 == 1)
    {
        await RawRoundAsync();
    }

    await SettleAsync(dataSource);
    var (seconds, added, batchId) = await ImportAsync(store, manifest, dir);
    if (round % 2 == 0)
    {
        await RawRoundAsync();
    }

    if (added != rows)
    {
        throw new InvalidOperationException($"Imported {added} jobs, expected {rows}.");
    }

    ours.Add(seconds);
    expanded.Add(await ExpansionAsync(store, dataSource, batchId));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  staged jobs made job rows afterwards (claims pay this over the run): {expanded[^1]:0.000} s"));
    var dry = await DryAsync(manifest);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  (profile) read + validate + plan + serialize, no database: {dry:0.000} s"));

    // The store's two paths side by side on the same stream of jobs: a new batch (binary COPY of staged chunks) and a
    // resumed, still empty batch (COPY into a temporary table, then the conflict-checked move into jobs).
    await ExecuteAsync(dataSource, "TRUNCATE batches, jobs CASCADE");
    direct.Add(await StoreOnlyAsync(store, manifest, dir, "direct", resume: false));
    checkedPath.Add(await StoreOnlyAsync(store, manifest, dir, "checked", resume: true));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"round {round}: raw COPY {raw[^1]:0.000} s, QwenBatch import {ours[^1]:0.000} s; store only: new batch {direct[^1]:0.000} s, resumed batch {checkedPath[^1]:0.000} s"));
}

var rawRate = rows / Median(raw);
var ourRate = rows / Median(ours);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"raw COPY:         {rawRate,10:N0} rows/s (median of {rounds})"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"QwenBatch import: {ourRate,10:N0} rows/s (validate + import, median of {rounds})"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio:            {ourRate / rawRate:P0} of raw COPY"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"store only:       new batch (staged chunks) {rows / Median(direct),10:N0} rows/s, resumed batch (temp table + conflict check) {rows / Median(checkedPath),10:N0} rows/s"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"expansion:        {rows / Median(expanded),10:N0} rows/s (staged chunks into job rows, after the import; median of {rounds})"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak RSS:         {Process.GetCurrentProcess().PeakWorkingSet64 / 1024.0 / 1024.0:0} MB"));
Directory.Delete(dir, recursive: true);
return 0;

static async Task GenerateAsync(string path, int rows)
{
    await using var writer = new StreamWriter(path);
    await writer.WriteLineAsync("id,prompt,images,n,sku");
    for (var i = 1; i <= rows; i++)
    {
        await writer.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"product-{i:D6},\"White studio background, keep the product unchanged, item {i}\",https://cdn.example.com/products/{i:D6}.jpg,{i % 3 + 1},SKU-{i:D6}"));
    }
}

// A checkpoint writes PostgreSQL's dirty buffers out; sync(1) then flushes the page cache they went to (the test server
// runs with fsync off, so the checkpoint alone leaves them there).
static async Task SettleAsync(NpgsqlDataSource dataSource)
{
    try
    {
        await ExecuteAsync(dataSource, "CHECKPOINT");
    }
    catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
    {
        // A server given on the command line may not let this role checkpoint; the page cache is flushed all the same.
    }

    using var sync = Process.Start("sync");
    await sync.WaitForExitAsync();
}

static async Task<double> RawCopyAsync(NpgsqlDataSource dataSource, string path)
{
    var server = ServerTicks();
    var start = Stopwatch.GetTimestamp();
    await using var connection = await dataSource.OpenConnectionAsync();
    await using (var copy = await connection.BeginTextImportAsync("COPY raw_rows (id, prompt, images, n, sku) FROM STDIN (FORMAT csv, HEADER true)"))
    {
        using var reader = new StreamReader(path);
        var buffer = new char[64 * 1024];
        int read;
        while ((read = await reader.ReadAsync(buffer)) > 0)
        {
            await copy.WriteAsync(buffer.AsMemory(0, read));
        }
    }

    var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  raw COPY: the server's CPU {ServerCpuSince(server):0.00} s"));
    return seconds;
}

// CPU seconds the PostgreSQL server processes on this machine (backends, checkpointer, WAL writer) used since `before`
// (their ticks then, by process id; a process that ended meanwhile is left out), from /proc in 10 ms clock ticks; 0 where
// there is no /proc or the server runs elsewhere.
static double ServerCpuSince(Dictionary<int, long> before) =>
    ServerTicks().Sum(p => p.Value - before.GetValueOrDefault(p.Key)) / 100.0;

static Dictionary<int, long> ServerTicks()
{
    var ticks = new Dictionary<int, long>();
    foreach (var dir in Directory.Exists("/proc") ? Directory.EnumerateDirectories("/proc") : [])
    {
        try
        {
            var stat = File.ReadAllText(Path.Combine(dir, "stat"));
            var name = stat.IndexOf('(', StringComparison.Ordinal);
            var end = stat.LastIndexOf(')');
            if (name < 0 || end < name || stat[(name + 1)..end] != "postgres")
            {
                continue;
            }

            var fields = stat[(end + 2)..].Split(' ');
            ticks[int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture)] =
                long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            // A process that ended meanwhile, or one this user may not read.
        }
    }

    return ticks;
}

// The CLI's path (ManifestImport): a live validating pass — reading and validating on one thread, planning and encoding
// on another, which the first helps while it is behind — whose chunks of planned jobs go into the store's one
// transaction (staged chunks, for a new batch this large) as soon as they are ready, while the rest of the file is read;
// the transaction commits once the whole file is known to be valid.
static async Task<(double Seconds, int Added, long BatchId)> ImportAsync(IStore store, string path, string storage)
{
    var server = ServerTicks();
    var start = Stopwatch.GetTimestamp();
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    var system = Process.GetCurrentProcess().PrivilegedProcessorTime.TotalSeconds;
    var paused = GC.GetTotalPauseDuration();
    await using var pass = ManifestPass.StartLive(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", skipInvalid: false);
    await pass.Started;
    var started = Stopwatch.GetElapsedTime(start).TotalSeconds;
    var batch = BatchPlanner.Batch(pass.Stream.Path, pass.Stream.Name, "odirouter", storage);
    var passEnded = pass.Completion.ContinueWith(_ => Stopwatch.GetElapsedTime(start).TotalSeconds, TaskScheduler.Default);
    var import = await store.ImportBatchAsync(batch, pass.Planned!, CancellationToken.None);
    var total = Stopwatch.GetElapsedTime(start).TotalSeconds;
    var passDone = await passEnded;
    if (pass.Stream.Diagnostics.ErrorCount > 0)
    {
        throw new InvalidOperationException(string.Join("\n", pass.Stream.Diagnostics.Errors.Take(5)));
    }

    cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
    paused = GC.GetTotalPauseDuration() - paused;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"  first chunk planned after {started:0.000} s; the rest read, validated, planned and imported (COPY) in {total - started:0.000} s; this process's CPU {cpu.TotalSeconds:0.000} s (system {Process.GetCurrentProcess().PrivilegedProcessorTime.TotalSeconds - system:0.000} s), the server's {ServerCpuSince(server):0.00} s, GC pauses {paused.TotalSeconds:0.000} s; the pass ended at {passDone:0.000} s, the commit at {total:0.000} s"));
    return (total, import.JobsAdded, import.Batch.Id);
}

// What the import left for later: a look at the batch's job list expands up to 20,000 staged jobs, so looks until no
// chunk is left time the expansion into job rows — the work claims do a chunk at a time while the batch runs.
static async Task<double> ExpansionAsync(IStore store, NpgsqlDataSource dataSource, long batchId)
{
    var seconds = 0.0;
    while (true)
    {
        await using var left = dataSource.CreateCommand($"SELECT count(*) FROM job_chunks WHERE batch_id = {batchId}");
        if ((long)(await left.ExecuteScalarAsync())! == 0)
        {
            return seconds;
        }

        var start = Stopwatch.GetTimestamp();
        await store.QueryEditsAsync(new EditQuery(BatchId: batchId, Limit: 1), CancellationToken.None);
        seconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
    }
}

// Reads the manifest again and imports it as a new batch, or into an existing empty batch (the resume path).
static async Task<double> StoreOnlyAsync(IStore store, string path, string storage, string name, bool resume)
{
    var batch = BatchPlanner.Batch(path, null, "odirouter", storage, name);
    if (resume)
    {
        await store.ImportBatchAsync(batch, Array.Empty<NewEdit>(), CancellationToken.None);
    }

    var start = Stopwatch.GetTimestamp();
    await store.ImportBatchAsync(batch, ReadAgain(path), CancellationToken.None);
    return Stopwatch.GetElapsedTime(start).TotalSeconds;
}

// The client's share of the import pass: the same enumeration and spec serialization, written nowhere.
static async Task<double> DryAsync(string path)
{
    var start = Stopwatch.GetTimestamp();
    var bytes = 0L;
    await foreach (var job in ReadAgain(path))
    {
        bytes += StoreJson.Write(job.Spec).Length + job.Key.Length + job.ContentHash.Length;
    }

    return bytes > 0 ? Stopwatch.GetElapsedTime(start).TotalSeconds : 0;
}

// The manifest's jobs read again on one thread, as an import does past the kept pass's memory bound.
static IAsyncEnumerable<NewEdit> ReadAgain(string path) =>
    ManifestImporter.ValidJobs(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", skipInvalid: false, CancellationToken.None);

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
{
    await using var command = dataSource.CreateCommand(sql);
    await command.ExecuteNonQueryAsync();
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Edits;
using QwenBatch.Simulator.Tasks;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Storage.Sqlite;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// Provider efficiency: the same N edits against the simulator's WaveSpeed API (same latency, same per-key rate limit,
/// a fresh simulator per contender), run by the official WaveSpeed JS SDK (tests/sdk/wavespeed-race.mjs: a fixed number
/// of concurrent client.run() calls with the SDK's default 1 s polling) and by <c>qwenbatch run --provider wavespeed</c>
/// with the same number of tasks in flight (Providers:WaveSpeed:MaxInFlight) and the rate limit configured
/// (Providers:WaveSpeed:RequestsPerSecond). Each contender is a cold process, timed from start to exit; both download
/// every output. Rounds alternate which contender goes first. QwenBatch keeps its state in SQLite (what <c>run</c> does
/// without <c>--database</c>) unless the sixth argument is <c>postgres</c>.
/// </summary>
internal static class SdkRaceBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200;
        var concurrency = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
        var latency = args.Length > 2 ? args[2] : "4-6";
        var rateLimit = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 10;
        var rounds = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
        var store = args.Length > 5 ? args[5] : "sqlite";
        if (store is not ("sqlite" or "postgres"))
        {
            Console.Error.WriteLine($"error: store '{store}' is not known; expected sqlite (the default of 'qwenbatch run') or postgres.");
            return 1;
        }

        var sdk = Path.Combine(BenchProcesses.RepositoryRoot(), "tests", "sdk");
        if (!File.Exists(Path.Combine(sdk, "node_modules", "wavespeed", "package.json")))
        {
            Console.Error.WriteLine("error: the wavespeed npm package is missing; run 'npm ci' in tests/sdk (scripts/test.sh does).");
            return 1;
        }

        var work = Directory.CreateTempSubdirectory("qwenbatch-sdk-race-").FullName;
        string[] simulatorOptions = ["--latency", latency, "--rate-limit", $"{rateLimit}", "--max-concurrent", "100000"];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sdk-race: {jobs} edits, {concurrency} in flight, task latency {latency} s, rate limit {rateLimit} req/s per key (simulate {string.Join(' ', simulatorOptions)}), QwenBatch on {store}"));
        var results = new List<Result>();
        try
        {
            for (var round = 1; round <= rounds; round++)
            {
                Func<Task<Result>> sdkRun = () => RunSdkAsync(sdk, work, simulatorOptions, jobs, concurrency, round);
                Func<Task<Result>> ourRun = () => RunQwenBatchAsync(work, simulatorOptions, jobs, concurrency, rateLimit, round, store);
                foreach (var contender in round % 2 == 1 ? [sdkRun, ourRun] : new[] { ourRun, sdkRun })
                {
                    var result = await contender();
                    results.Add(result);
                    Print(result, jobs);
                }
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        var theirs = results.Where(r => r.Name == Sdk).ToList();
        var ours = results.Where(r => r.Name == Ours).ToList();
        var wallRatio = Median(ours.Select(r => r.WallSeconds)) / Median(theirs.Select(r => r.WallSeconds));
        var requestRatio = ours.Sum(r => r.Requests) / (double)theirs.Sum(r => r.Requests);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"QwenBatch / SDK: wall time {wallRatio:0.00}× (goal ≤ 1.00), API requests {requestRatio:0.00}× (goal ≤ 0.50), 429s {ours.Sum(r => r.RateLimited)} (goal 0)"));
        return results.All(r => r.Succeeded == jobs) ? 0 : 1;
    }

    internal const string Sdk = "WaveSpeed JS SDK";
    private const string Ours = "QwenBatch";

    internal static async Task<Result> RunSdkAsync(string sdk, string work, string[] simulatorOptions, int jobs, int concurrency, int round)
    {
        using var simulator = await BenchProcesses.StartSimulatorAsync(work, simulatorOptions);
        var output = new List<string>();
        var outDir = Path.Combine(work, $"sdk-{round}");
        var clock = Stopwatch.StartNew();
        using (var node = BenchProcesses.Start("node", sdk, new Dictionary<string, string>(),
            ["wavespeed-race.mjs", simulator.BaseUrl.AbsoluteUri.TrimEnd('/'), $"{jobs}", $"{concurrency}", outDir], output))
        {
            await node.WaitForExitAsync();
            clock.Stop();
            if (node.ExitCode != 0)
            {
                throw new InvalidOperationException($"the SDK driver exited {node.ExitCode}: {string.Join('\n', output.TakeLast(10))}");
            }
        }

        using var summary = JsonDocument.Parse(output.Last(l => l.StartsWith('{')));
        var succeeded = summary.RootElement.GetProperty("succeeded").GetInt32();
        var resubmits = summary.RootElement.GetProperty("resubmits_after_429").GetInt32();
        var lagMedian = summary.RootElement.GetProperty("lag_median_ms").GetDouble() / 1000;
        var lagMean = summary.RootElement.GetProperty("lag_mean_ms").GetDouble() / 1000;
        Directory.Delete(outDir, recursive: true);
        return Result.From(Sdk, clock.Elapsed.TotalSeconds, succeeded, (await simulator.TryStatsAsync())!.Value, string.Create(CultureInfo.InvariantCulture, $"completion noticed {lagMedian:0.00} s late (median; mean {lagMean:0.00} s), {resubmits} submits refused with 429 and sent again"));
    }

    private static async Task<Result> RunQwenBatchAsync(string work, string[] simulatorOptions, int jobs, int concurrency, int rateLimit, int round, string store)
    {
        var database = store == "postgres" ? await (await PostgresServer.GetAsync()).CreateDatabaseAsync("race") : null;
        using var simulator = await BenchProcesses.StartSimulatorAsync(work, simulatorOptions);
        var dir = Directory.CreateDirectory(Path.Combine(work, $"qwenbatch-{round}")).FullName;
        var manifest = Path.Combine(dir, "race.csv");
        await File.WriteAllLinesAsync(manifest, ["id,prompt,images,size,seed,output_format",
            .. Enumerable.Range(1, jobs).Select(i => $"job-{i},\"White studio background, keep the product unchanged, item {i}\",https://images.example/products/{i}.png,512*512,{i},png")]);
        var environment = new Dictionary<string, string>
        {
            ["Providers__WaveSpeed__BaseUrl"] = simulator.BaseUrl.AbsoluteUri,
            ["WAVESPEED_API_KEY"] = "qwenbatch-race-key",
            ["Providers__WaveSpeed__RequestsPerSecond"] = $"{rateLimit}",
            ["Providers__WaveSpeed__MaxInFlight"] = $"{concurrency}",
            ["Serilog__MinimumLevel__Default"] = "Warning",
        };
        if (database is not null)
        {
            environment["ConnectionStrings__Postgres"] = database;
        }

        var output = new List<string>();
        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        using (var run = BenchProcesses.StartCli(dir, environment, ["run", manifest, "--provider", "wavespeed", "--storage", Path.Combine(dir, "output")], output))
        {
            await run.WaitForExitAsync();
            clock.Stop();
            if (run.ExitCode != 0)
            {
                throw new InvalidOperationException($"qwenbatch run exited {run.ExitCode}: {string.Join('\n', output.TakeLast(10))}");
            }
        }

        var images = Directory.EnumerateFiles(Path.Combine(dir, "output"), "*.png", SearchOption.AllDirectories).Count();
        await using (IStore state = database is not null
            ? new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance)
            : new SqliteStore(Path.Combine(dir, ".qwenbatch", "qwenbatch.db"), TimeProvider.System))
        {
            var note = await BreakdownAsync(state, started, concurrency);
            Directory.Delete(dir, recursive: true);
            return Result.From(Ours, clock.Elapsed.TotalSeconds, images, (await simulator.TryStatsAsync())!.Value, note);
        }
    }

    /// <summary>
    /// Where QwenBatch's time per job goes, from its own store: from process start to the first submit (start-up,
    /// migrations, validation, import); how late completions were noticed (the simulator's request id carries each task's
    /// true completion time); the submit step from the claim's pending → submitting to the accepted id; and the slot
    /// handoff — a place under MaxInFlight frees when a completion is seen, and the n-th submit beyond the first
    /// <paramref name="concurrency"/> is taken as filling the place the n-th seen completion freed.
    /// </summary>
    private static async Task<string> BreakdownAsync(IStore state, DateTimeOffset started, int concurrency)
    {
        var batch = await state.FindBatchAsync("race", CancellationToken.None) ?? throw new InvalidOperationException("no batch 'race' in QwenBatch's store");
        var lags = new List<double>();
        var submitSteps = new List<double>();
        var seenAt = new List<DateTimeOffset>();
        var claimedAt = new List<DateTimeOffset>();
        foreach (var job in await state.GetEditsAsync(batch.Id, CancellationToken.None))
        {
            var history = await state.GetHistoryAsync(job.Id, CancellationToken.None);
            var seen = history.FirstOrDefault(h => h.Reason?.StartsWith("completed", StringComparison.Ordinal) == true);
            if (seen is not null)
            {
                seenAt.Add(seen.At);
                if (RequestIdCodec.TryDecode(job.RequestId, out var ticket))
                {
                    lags.Add((seen.At - DateTimeOffset.FromUnixTimeMilliseconds(ticket.DoneMs)).TotalSeconds);
                }
            }

            var claimed = history.FirstOrDefault(h => h.To == EditState.Submitting);
            var accepted = history.FirstOrDefault(h => h.To == EditState.AtProvider);
            if (claimed is not null)
            {
                claimedAt.Add(claimed.At);
                if (accepted is not null)
                {
                    submitSteps.Add((accepted.At - claimed.At).TotalSeconds);
                }
            }
        }

        seenAt.Sort();
        claimedAt.Sort();
        var handoffs = claimedAt.Skip(concurrency).Zip(seenAt, (claim, seen) => (claim - seen).TotalSeconds).ToList();
        return string.Create(CultureInfo.InvariantCulture,
            $"start-up to first submit {(claimedAt.FirstOrDefault() - started).TotalSeconds:0.0} s; completion noticed {Median(lags):0.00} s late (median; mean {lags.DefaultIfEmpty().Average():0.00} s); slot handoff {Median(handoffs):0.00} s (median; mean {handoffs.DefaultIfEmpty().Average():0.00} s); submit step {submitSteps.DefaultIfEmpty().Average():0.00} s (claimed → accepted)");
    }

    private static void Print(Result r, int jobs) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{r.Name,-17} wall {r.WallSeconds,6:0.0} s | {r.Succeeded}/{jobs} outputs | API requests {r.Requests} ({r.Requests / (double)jobs:0.00}/job: {r.Submits} submits, {r.ResultCalls} result GETs) | 429s {r.RateLimited} | {r.Note}"));

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }

    internal sealed record Result(string Name, double WallSeconds, int Succeeded, long Requests, long Submits, long ResultCalls, long RateLimited, string Note)
    {
        public static Result From(string name, double wall, int succeeded, JsonElement stats, string note) => new(
            name, wall, succeeded, BenchProcesses.Simulator.Requests(stats), stats.GetProperty("submits").GetInt64(),
            stats.GetProperty("result_calls").GetInt64(), stats.GetProperty("rate_limited").GetInt64(), note);
    }
}

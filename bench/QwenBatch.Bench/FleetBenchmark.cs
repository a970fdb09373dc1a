using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Simulator.Tasks;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// Flow control across a fleet: real qwenbatch processes (one `run` that imports and works, plus workers) on one
/// PostgreSQL against `qwenbatch simulate --rate-limit R` with 6 s tasks, the fleet configured at the same R. Reports
/// the share of the allowance used, 429s, status calls per job and completion lag (the simulator's request ids carry
/// each task's true completion time). Two rounds on one database: cold (an empty store) and warm (a second batch run by
/// new processes, which start from the task latencies the first round saved in the store).
/// </summary>
internal static class FleetBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 48;
        var workers = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2;
        var rps = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 4;
        var root = RepositoryRoot();
        var cli = Path.Combine(root, "src", "QwenBatch.Cli", "bin", "Release", "net10.0", "qwenbatch.dll");
        var work = Directory.CreateTempSubdirectory("qwenbatch-fleet-").FullName;
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("fleet");
        var port = FreePort();
        using var simulator = Start(cli, work, [], "simulate", "--port", $"{port}", "--latency", "6-6.5", "--rate-limit", $"{rps}", "--max-concurrent", "1000");
        using var http = new HttpClient();
        var stats = new Uri($"http://127.0.0.1:{port}/_sim/stats");
        await WaitForAsync(async () => (await TryGetAsync(http, stats)) is not null);
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = $"http://127.0.0.1:{port}/",
            ["ODIROUTER_API_KEY"] = "bench-key",
            ["Providers__Odirouter__RequestsPerSecond"] = $"{rps}",
            ["ConnectionStrings__Postgres"] = database,
            ["Worker__FirstPollDelay"] = "00:00:01",
            ["Serilog__MinimumLevel__Default"] = "Warning",
        };

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fleet: {workers} processes, {jobs} jobs of 6-6.5 s, limit {rps} req/s (provider and fleet)"));

        // Round 1 starts on an empty store (nothing learned: the processes probe). Round 2 is tonight's run: new processes
        // on the same database, which start from the latencies round 1 left in the store.
        foreach (var round in new[] { "cold", "warm" })
        {
            var before = JsonDocument.Parse((await TryGetAsync(http, stats))!).RootElement;
            var wall = await RoundAsync(cli, work, environment, round, jobs, workers);
            var after = JsonDocument.Parse((await TryGetAsync(http, stats))!).RootElement;
            long Get(string name) => after.GetProperty(name).GetInt64() - before.GetProperty(name).GetInt64();
            var requests = Get("submits") + Get("status_calls") + Get("result_calls");
            var (lags, active, seenAfterSubmit) = await CompletionLagsAsync(database, round);
            lags.Sort();
            Console.WriteLine($"round '{round}'{(round == "cold" ? " (empty store)" : " (second batch, same database, new processes)")}:");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  wall time:            {wall:0.0} s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  API requests:         {requests} ({Get("submits")} submits, {Get("status_calls")} status, {Get("result_calls")} result)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  allowance used:       {requests / (rps * wall):P0} of {rps} req/s over the whole round (process start-up included)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"                        {requests / (rps * active):P0} from the first submit to the last completion ({active:0.0} s)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  429s:                 {Get("rate_limited")}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  status calls per job: {Get("status_calls") / (double)jobs:0.00}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  completion lag:       p50 {lags[lags.Count / 2]:0.00} s, p95 {lags[(int)(lags.Count * 0.95)]:0.00} s, max {lags[^1]:0.00} s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  completion seen:      p50 {seenAfterSubmit:0.00} s after the accepted submit (tasks take 6-6.5 s)"));
            await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
            foreach (var learned in await store.MergeLatenciesAsync([], CancellationToken.None))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  learned in the store: {learned.Provider} n={learned.N} size '{learned.Size}': {learned.Seconds:0.00} s from {learned.Samples} completion(s)"));
            }
        }

        simulator.Kill();
        Directory.Delete(work, recursive: true);
        return 0;
    }

    /// <summary>One batch named <paramref name="name"/>: a `run` plus workers started for it, killed when it ends.</summary>
    private static async Task<double> RoundAsync(string cli, string work, Dictionary<string, string> environment, string name, int jobs, int workers)
    {
        var manifest = Path.Combine(work, name + ".csv");
        await File.WriteAllLinesAsync(manifest, ["id,prompt,images", .. Enumerable.Range(1, jobs).Select(i => $"job-{i:000},white background,https://images.example/{name}/{i}.png")]);
        var fleet = Enumerable.Range(1, workers - 1).Select(_ => Start(cli, work, environment, "worker")).ToList();
        var clock = Stopwatch.StartNew();
        using (var run = Start(cli, work, environment, "run", manifest, "--provider", "odirouter"))
        {
            await run.WaitForExitAsync();
            if (run.ExitCode != 0)
            {
                throw new InvalidOperationException($"run exited {run.ExitCode}");
            }
        }

        var wall = clock.Elapsed.TotalSeconds;
        foreach (var worker in fleet)
        {
            // SIGTERM, as a deployment stops a worker: it gives back its leases and saves what it learned.
            using (var term = Process.Start("kill", ["-TERM", worker.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync();
            }

            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await worker.WaitForExitAsync(patience.Token);
            }
            catch (OperationCanceledException)
            {
                worker.Kill();
            }

            worker.Dispose();
        }

        return wall;
    }

    /// <summary>From the provider's true completion time (in its request id) to the poll that saw it (the history entry).</summary>
    private static async Task<(List<double> Lags, double ActiveSeconds, double SeenAfterSubmitP50)> CompletionLagsAsync(string database, string batchName)
    {
        var first = DateTimeOffset.MaxValue;
        var last = DateTimeOffset.MinValue;
        await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        var batch = await store.FindBatchAsync(batchName, CancellationToken.None) ?? throw new InvalidOperationException("no batch");
        var lags = new List<double>();
        var seenAfterSubmit = new List<double>();
        foreach (var job in await store.GetEditsAsync(batch.Id, CancellationToken.None))
        {
            var seen = (await store.GetHistoryAsync(job.Id, CancellationToken.None)).First(h => h.Reason?.StartsWith("completed", StringComparison.Ordinal) == true).At;
            if (RequestIdCodec.TryDecode(job.RequestId, out var ticket))
            {
                lags.Add((seen - DateTimeOffset.FromUnixTimeMilliseconds(ticket.DoneMs)).TotalSeconds);
                seenAfterSubmit.Add((seen - job.SubmittedAt!.Value).TotalSeconds);
            }

            first = job.SubmittedAt < first ? job.SubmittedAt.Value : first;
            last = seen > last ? seen : last;
        }

        seenAfterSubmit.Sort();
        return (lags, (last - first).TotalSeconds, seenAfterSubmit[seenAfterSubmit.Count / 2]);
    }

    private static Process Start(string cli, string work, Dictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("exec");
        info.ArgumentList.Add(cli);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<string?> TryGetAsync(HttpClient http, Uri uri)
    {
        try
        {
            return await http.GetStringAsync(uri);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        for (var i = 0; i < 200 && !await condition(); i++)
        {
            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "QwenBatch.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("QwenBatch.sln not found");
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Edits;
using QwenBatch.Simulator.Tasks;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// Waiting on WaveSpeed with webhooks against polling, side by side: the same N edits against a fresh simulator each
/// (same latency and per-key rate limit), run by <c>qwenbatch serve</c> (its engine on PostgreSQL) with
/// <c>Webhooks:PublicUrl</c> set and without it, and by the official WaveSpeed JS SDK (1 s polling) as the reference.
/// For each: API requests per edit (submits, and result GETs, which with webhooks are the fallback polls), the
/// deliveries, and how late each completion was noticed (the simulator's request id carries each task's true completion
/// time; QwenBatch's history says when it was seen), p50 and p95. serve is started first and timed from the batch's
/// submit to its last output, so its start-up is not in the wall time; the SDK is timed from start to exit.
/// </summary>
internal static class WebhookRaceBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200;
        var concurrency = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
        var latency = args.Length > 2 ? args[2] : "4-6";
        var rateLimit = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 10;
        var sdk = Path.Combine(BenchProcesses.RepositoryRoot(), "tests", "sdk");
        string[] simulatorOptions = ["--latency", latency, "--rate-limit", $"{rateLimit}", "--max-concurrent", "100000"];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"webhook-race: {jobs} edits, {concurrency} in flight, task latency {latency} s, rate limit {rateLimit} req/s per key; QwenBatch serve on PostgreSQL"));
        var work = Directory.CreateTempSubdirectory("qwenbatch-webhook-race-").FullName;
        var ok = true;
        try
        {
            foreach (var webhooks in new[] { true, false })
            {
                var run = await RunServeAsync(work, simulatorOptions, jobs, concurrency, rateLimit, webhooks);
                ok &= run.Succeeded == jobs;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{(webhooks ? "QwenBatch webhooks" : "QwenBatch polling"),-19} wall {run.Wall,6:0.0} s | {run.Succeeded}/{jobs} succeeded | API requests {run.Requests / (double)jobs:0.00}/edit ({run.Submits / (double)jobs:0.00} submits, {run.ResultCalls / (double)jobs:0.00} status calls) | webhooks delivered {run.Delivered} | completion noticed p50 {Percentile(run.Lags, 0.5):0.00} s, p95 {Percentile(run.Lags, 0.95):0.00} s late | 429s {run.RateLimited}"));
            }

            if (File.Exists(Path.Combine(sdk, "node_modules", "wavespeed", "package.json")))
            {
                var theirs = await SdkRaceBenchmark.RunSdkAsync(sdk, work, simulatorOptions, jobs, concurrency, 1);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{SdkRaceBenchmark.Sdk,-19} wall {theirs.WallSeconds,6:0.0} s | {theirs.Succeeded}/{jobs} outputs | API requests {theirs.Requests / (double)jobs:0.00}/edit ({theirs.Submits / (double)jobs:0.00} submits, {theirs.ResultCalls / (double)jobs:0.00} status calls) | {theirs.Note}"));
            }
            else
            {
                Console.WriteLine("WaveSpeed JS SDK: not run (no node_modules in tests/sdk; run 'npm ci' there)");
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        return ok ? 0 : 1;
    }

    private static async Task<Run> RunServeAsync(string work, string[] simulatorOptions, int jobs, int concurrency, int rateLimit, bool webhooks)
    {
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("webhook_race");
        using var simulator = await BenchProcesses.StartSimulatorAsync(work, simulatorOptions);
        var dir = Directory.CreateDirectory(Path.Combine(work, webhooks ? "webhooks" : "polling")).FullName;
        var port = BenchProcesses.FreePort();
        var url = $"http://127.0.0.1:{port}";
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Postgres"] = database,
            ["Storage__Root"] = Path.Combine(dir, "output"),
            ["State__Directory"] = Path.Combine(dir, "state"),
            ["Providers__WaveSpeed__BaseUrl"] = simulator.BaseUrl.AbsoluteUri,
            ["WAVESPEED_API_KEY"] = "qwenbatch-race-key",
            ["Providers__WaveSpeed__RequestsPerSecond"] = $"{rateLimit}",
            ["Providers__WaveSpeed__MaxInFlight"] = $"{concurrency}",
            ["Serilog__MinimumLevel__Default"] = "Warning",
        };
        if (webhooks)
        {
            environment["Webhooks__PublicUrl"] = url;
        }

        var output = new List<string>();
        using var serve = BenchProcesses.StartCli(dir, environment, ["serve", "--urls", url], output);
        try
        {
            await WaitHealthyAsync(serve, url, output);
            var manifest = Path.Combine(dir, "race.csv");
            await File.WriteAllLinesAsync(manifest, ["id,prompt,images,size,seed,output_format",
                .. Enumerable.Range(1, jobs).Select(i => $"job-{i},\"White studio background, keep the product unchanged, item {i}\",https://images.example/products/{i}.png,512*512,{i},png")]);
            var clock = Stopwatch.StartNew();
            using (var submit = BenchProcesses.StartCli(dir, environment, ["submit", manifest, "--provider", "wavespeed", "--name", "race"], output))
            {
                await submit.WaitForExitAsync();
                if (submit.ExitCode != 0)
                {
                    throw new InvalidOperationException($"qwenbatch submit exited {submit.ExitCode}: {string.Join('\n', output.TakeLast(10))}");
                }
            }

            await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
            var batch = await store.FindBatchAsync("race", CancellationToken.None) ?? throw new InvalidOperationException("no batch 'race'");
            IReadOnlyList<EditRecord> edits = [];
            while (clock.Elapsed < TimeSpan.FromMinutes(20))
            {
                edits = await store.GetEditsAsync(batch.Id, CancellationToken.None);
                if (edits.Count == jobs && edits.All(e => e.State is EditState.Succeeded or EditState.Failed or EditState.Cancelled))
                {
                    break;
                }

                await Task.Delay(100);
            }

            clock.Stop();
            var lags = new List<double>();
            foreach (var edit in edits)
            {
                var seen = (await store.GetHistoryAsync(edit.Id, CancellationToken.None)).FirstOrDefault(h => h.Reason?.StartsWith("completed", StringComparison.Ordinal) == true);
                if (seen is not null && RequestIdCodec.TryDecode(edit.RequestId, out var ticket))
                {
                    lags.Add((seen.At - DateTimeOffset.FromUnixTimeMilliseconds(ticket.DoneMs)).TotalSeconds);
                }
            }

            var stats = (await simulator.TryStatsAsync())!.Value;
            return new Run(clock.Elapsed.TotalSeconds, edits.Count(e => e.State == EditState.Succeeded), BenchProcesses.Simulator.Requests(stats),
                stats.GetProperty("submits").GetInt64(), stats.GetProperty("result_calls").GetInt64() + stats.GetProperty("status_calls").GetInt64(),
                stats.GetProperty("webhooks_delivered").GetInt64(), stats.GetProperty("rate_limited").GetInt64(), lags);
        }
        finally
        {
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
            await (await PostgresServer.GetAsync()).DropDatabaseAsync(database);
        }
    }

    private static async Task WaitHealthyAsync(Process serve, string url, List<string> output)
    {
        using var http = new HttpClient();
        for (var i = 0; i < 600; i++)
        {
            if (serve.HasExited)
            {
                throw new InvalidOperationException($"serve exited {serve.ExitCode}: {string.Join('\n', output.TakeLast(10))}");
            }

            try
            {
                using var response = await http.GetAsync($"{url}/healthz");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("serve did not answer /healthz");
    }

    private static double Percentile(List<double> values, double q)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
    }

    private sealed record Run(double Wall, int Succeeded, long Requests, long Submits, long ResultCalls, long Delivered, long RateLimited, List<double> Lags);
}

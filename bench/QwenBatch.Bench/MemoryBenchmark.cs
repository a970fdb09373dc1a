using System.Diagnostics;
using System.Globalization;
using Npgsql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// Worker memory: peak RSS (VmHWM) of one <c>qwenbatch worker</c> process through a large batch against the same worker
/// through a small one, side by side in one run. Each batch gets its own database and a fresh simulator whose PNG outputs
/// are padded to the output size asked for (2 MB by default, <c>simulate --output-padding</c>), so the worker streams
/// realistically large files. Finished outputs are deleted while the batch runs, so 10k × 2 MB never sits on disk.
/// </summary>
internal static class MemoryBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
        var baseline = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1_000;
        var outputMb = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 2;
        var padding = (int)(outputMb * 1024 * 1024);
        var work = Directory.CreateTempSubdirectory("qwenbatch-memory-").FullName;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"memory: one worker process, {baseline} jobs then {jobs} jobs, {outputMb:0.##} MB PNG outputs, PostgreSQL"));
        try
        {
            var small = await RunBatchAsync(work, baseline, padding);
            var large = await RunBatchAsync(work, jobs, padding);
            var ratio = large.PeakRss / (double)small.PeakRss;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"peak RSS {jobs} jobs / {baseline} jobs: {ratio:0.000}× ({(ratio - 1):+0.0%;-0.0%}; goal: within ±10%)"));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        return 0;
    }

    private static async Task<Run> RunBatchAsync(string work, int jobs, int padding)
    {
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("memory");
        var dir = Directory.CreateDirectory(Path.Combine(work, $"batch-{jobs}")).FullName;
        var storage = Path.Combine(dir, "output");
        var manifest = Path.Combine(dir, "memory.csv");
        await File.WriteAllLinesAsync(manifest, ["id,prompt,images,size",
            .. Enumerable.Range(1, jobs).Select(i => $"job-{i:D6},white studio background,https://images.example/products/{i}.png,512*512")]);
        using var simulator = await BenchProcesses.StartSimulatorAsync(work, "--latency", "0.05-0.1", "--max-concurrent", "100000", "--output-padding", $"{padding}");
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.AbsoluteUri,
            ["ODIROUTER_API_KEY"] = "memory-bench-key",
            ["ConnectionStrings__Postgres"] = database,
            ["Serilog__MinimumLevel__Default"] = "Warning",
        };
        var output = new List<string>();
        using (var submit = BenchProcesses.StartCli(dir, environment, ["submit", manifest, "--provider", "odirouter", "--storage", storage], output))
        {
            await submit.WaitForExitAsync();
            if (submit.ExitCode != 0)
            {
                throw new InvalidOperationException($"submit exited {submit.ExitCode}: {string.Join('\n', output)}");
            }
        }

        await using var dataSource = NpgsqlDataSource.Create(database);
        var clock = Stopwatch.StartNew();
        using var worker = BenchProcesses.StartCli(dir, environment, ["worker"], output);
        long peak = 0, deletedBytes = 0, settled = 0, failed = 0;
        while (settled < jobs)
        {
            await Task.Delay(250);
            if (worker.HasExited)
            {
                throw new InvalidOperationException($"the worker exited {worker.ExitCode}: {string.Join('\n', output.TakeLast(10))}");
            }

            peak = Math.Max(peak, BenchProcesses.PeakRss(worker.Id) ?? 0);
            (settled, failed) = await SettledAsync(dataSource);
            deletedBytes += DeleteFinishedOutputs(storage);
        }

        var seconds = clock.Elapsed.TotalSeconds;
        peak = Math.Max(peak, BenchProcesses.PeakRss(worker.Id) ?? 0);
        worker.Kill();
        await worker.WaitForExitAsync();
        deletedBytes += DeleteFinishedOutputs(storage);
        if (failed > 0)
        {
            throw new InvalidOperationException($"{failed} of {jobs} jobs failed");
        }

        var stats = (await simulator.TryStatsAsync())!.Value;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{jobs,6} jobs: peak RSS {peak / 1024.0 / 1024.0,6:0.0} MB | {seconds,6:0.0} s ({jobs / seconds:0} jobs/s) | {deletedBytes / 1024.0 / 1024.0 / 1024.0:0.00} GB downloaded | {stats.GetProperty("submits").GetInt64()} submits"));
        return new Run(jobs, peak);
    }

    private static async Task<(long Settled, long Failed)> SettledAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT count(*) FILTER (WHERE state IN ('succeeded', 'failed', 'cancelled', 'held')), count(*) FILTER (WHERE state <> 'succeeded' AND state IN ('failed', 'cancelled', 'held')) FROM jobs");
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>Deletes the outputs the worker has finished (renamed into place; its temporary files start with a dot).</summary>
    private static long DeleteFinishedOutputs(string storage)
    {
        if (!Directory.Exists(storage))
        {
            return 0;
        }

        long bytes = 0;
        foreach (var file in new DirectoryInfo(storage).EnumerateFiles("*.png", SearchOption.AllDirectories))
        {
            if (!file.Name.StartsWith('.'))
            {
                bytes += file.Length;
                file.Delete();
            }
        }

        return bytes;
    }

    private sealed record Run(int Jobs, long PeakRss);
}

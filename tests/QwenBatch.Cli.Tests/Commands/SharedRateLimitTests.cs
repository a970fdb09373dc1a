using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>Two worker processes on one PostgreSQL share the provider's request limit: the provider never answers 429.</summary>
public sealed class SharedRateLimitTests : IDisposable
{
    private const int RequestsPerSecond = 8;
    private const int Jobs = 16;
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task TwoProcessesAtTheProvidersLimit_NoRequestIsRefusedAndEveryJobSucceeds()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.5-1",
            "--rate-limit", RequestsPerSecond.ToString(CultureInfo.InvariantCulture), "--max-concurrent", "100");
        await using var recorder = SubmitRecorder.Start(simulator.BaseUrl);
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("shared_limit");
        var manifest = Path.Combine(_workspace.Root, "burst.csv");
        await File.WriteAllLinesAsync(manifest,
            ["id,prompt,images", .. Enumerable.Range(1, Jobs).Select(i => $"job-{i:00},white background,https://images.example/{i}.png")]);
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = recorder.BaseUrl,
            ["ODIROUTER_API_KEY"] = "odr-shared-limit-key",
            ["Providers__Odirouter__RequestsPerSecond"] = RequestsPerSecond.ToString(CultureInfo.InvariantCulture),
            ["ConnectionStrings__Postgres"] = database,
            ["Worker__FirstPollDelay"] = "00:00:00.300",
            ["Worker__FallbackPollInterval"] = "00:00:00.500",
        };

        await using var worker = CliProcess.Start(_workspace.Root, environment, "worker");
        var run = await CliProcess.RunAsync(_workspace.Root, environment, "run", "burst.csv", "--provider", "odirouter");
        worker.Terminate();
        (await worker.WaitAsync()).ExitCode.ShouldBe(0);

        run.ExitCode.ShouldBe(0, run.Output);
        var stats = await simulator.StatsAsync();
        stats.GetProperty("rate_limited").GetInt64().ShouldBe(0, Timeline(recorder.Calls));
        stats.GetProperty("submits").GetInt64().ShouldBe(Jobs);
        await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        var batch = (await store.FindBatchAsync("burst", CancellationToken.None)).ShouldNotBeNull();
        var jobs = await store.GetEditsAsync(batch.Id, CancellationToken.None);
        jobs.ShouldAllBe(j => j.State == EditState.Succeeded);

        // Both processes did work: the limit was shared, not side-stepped by one process doing everything.
        var owners = new HashSet<string>();
        foreach (var job in jobs)
        {
            owners.UnionWith((await store.GetHistoryAsync(job.Id, CancellationToken.None)).Select(h => h.ServerId).OfType<string>());
        }

        owners.Count.ShouldBeGreaterThanOrEqualTo(2);
    }

    /// <summary>When each call reached the provider, relative to the first, with its answer: where a 429 came from.</summary>
    private static string Timeline(IReadOnlyList<RecordedCall> calls) => calls.Count == 0 ? "no calls" : string.Join("\n", calls.Select(c =>
        string.Create(CultureInfo.InvariantCulture, $"{(c.Sent - calls[0].Sent).TotalMilliseconds,8:0} ms {c.Kind,-8} {c.Status}")));
}

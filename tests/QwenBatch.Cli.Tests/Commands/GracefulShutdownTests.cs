using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>
/// SIGTERM mid-batch, as Docker, systemd and Kubernetes stop a worker: the Hangfire server leaves the servers list and
/// leaves no job Processing and no edit being submitted; another worker finishes without submitting anything again.
/// </summary>
public sealed class GracefulShutdownTests : IDisposable
{
    private const string ApiKey = "odr-shutdown-key-7c21";
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task SigtermMidBatch_StateKeptAndAnotherWorkerFinishesWithoutResubmitting()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "2-3");
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("shutdown");
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = ApiKey,
            ["ConnectionStrings__Postgres"] = database,
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:01",
            ["Worker__FallbackPollInterval"] = "00:00:00.500",
        };

        await using (var run = CliProcess.Start(_workspace.Root, environment, "run", "samples/products.csv", "--provider", "odirouter"))
        {
            for (var i = 0; i < 300 && await simulator.SubmitsAsync() < 2; i++)
            {
                await Task.Delay(50);
            }

            run.Terminate();
            var stopped = await run.WaitAsync();
            stopped.ExitCode.ShouldBe(130, stopped.Output);
        }

        await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        var batch = (await store.FindBatchAsync("products", CancellationToken.None)).ShouldNotBeNull();
        var hangfire = HangfireOf(database).GetMonitoringApi();
        hangfire.Servers().ShouldBeEmpty("a server that stops removes itself from Hangfire's servers");
        hangfire.ProcessingCount().ShouldBe(0, "a step under way finished within the grace period");
        (await store.GetEditsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(j => j.State != EditState.Submitting);

        var heartbeat = Path.Combine(_workspace.Root, "worker.heartbeat");
        var workerEnvironment = new Dictionary<string, string>(environment)
        {
            ["Worker__HeartbeatFile"] = heartbeat,
            ["Metrics__Urls"] = "http://127.0.0.1:0",
        };
        await using (var worker = CliProcess.Start(_workspace.Root, workerEnvironment, "worker"))
        {
            for (var i = 0; i < 600 && !(await store.GetProgressAsync(batch.Id, CancellationToken.None)).IsSettled; i++)
            {
                await Task.Delay(100);
            }

            for (var i = 0; i < 50 && !File.Exists(heartbeat); i++)
            {
                await Task.Delay(100);
            }

            var healthy = await CliProcess.RunAsync(_workspace.Root, null, "healthcheck", "--file", heartbeat, "--max-age", "30");
            healthy.ExitCode.ShouldBe(0, healthy.Output);

            // The worker's own /metrics (Metrics:Urls): what this worker did, which is the rest of the batch.
            var metricsUrl = System.Text.RegularExpressions.Regex.Match(worker.Stderr, @"Metrics at (\S+)").Groups[1].Value;
            metricsUrl.ShouldNotBeEmpty(worker.Stderr);
            using (var http = new HttpClient())
            {
                var scrape = await http.GetStringAsync(metricsUrl);
                scrape.ShouldContain("qwenbatch_edits_succeeded_total{");
                scrape.ShouldContain("provider=\"odirouter\"");
                scrape.ShouldContain("qwenbatch_edits_backlog{");
            }

            worker.Terminate();
            var result = await worker.WaitAsync();
            result.ExitCode.ShouldBe(0, result.Output);
        }

        var stale = await CliProcess.RunAsync(_workspace.Root, null, "healthcheck", "--file", Path.Combine(_workspace.Root, "absent.heartbeat"));
        stale.ExitCode.ShouldBe(1);
        stale.Stdout.ShouldContain("unhealthy");

        var edits = await store.GetEditsAsync(batch.Id, CancellationToken.None);
        edits.ShouldAllBe(j => j.State == EditState.Succeeded && j.AcceptedSubmits == 1 && j.UncertainSubmits == 0);
        (await simulator.SubmitsAsync()).ShouldBe(edits.Count);
        Directory.GetFiles(batch.StorageDir, "*.png").Length.ShouldBe(5);
        hangfire.Servers().ShouldBeEmpty();
    }

    /// <summary>The fleet's Hangfire storage, read by the test only (it installs nothing).</summary>
    private static PostgreSqlStorage HangfireOf(string database)
    {
        var options = JobStorages.Options(new HangfireOptions());
        options.PrepareSchemaIfNecessary = false;
        return new PostgreSqlStorage(new NpgsqlConnectionFactory(database, options), options);
    }
}

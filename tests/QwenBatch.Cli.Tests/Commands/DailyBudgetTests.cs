using System.Text.Json;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>A provider account's daily budget, shared by a worker and a run on one PostgreSQL, against the simulator.</summary>
public sealed class DailyBudgetTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Run_DailyBudgetSpentByAnEarlierBatch_NeverExceededExits3AndListsTheHeldJobs()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.2-0.4");
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("daily_budget");
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = "odr-daily-budget-key",
            ["Providers__Odirouter__DailyBudgetUsd"] = "0.10",
            ["ConnectionStrings__Postgres"] = database,
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__FallbackPollInterval"] = "00:00:00.500",
        };
        var morning = TestManifests.OneImageJobs(_workspace, "morning", 3);
        var noon = TestManifests.OneImageJobs(_workspace, "noon", 4);
        await using var worker = CliProcess.Start(_workspace.Root, environment, "worker");

        var first = await CliProcess.RunAsync(_workspace.Root, environment, "run", morning, "--provider", "odirouter");
        var second = await CliProcess.RunAsync(_workspace.Root, environment, "run", noon, "--provider", "odirouter");
        worker.Terminate();
        (await worker.WaitAsync()).ExitCode.ShouldBe(0);

        first.ExitCode.ShouldBe(0, first.Output);
        second.ExitCode.ShouldBe(3, second.Output);
        second.Stdout.ShouldContain("2 job(s) held");
        second.Stdout.ShouldContain("held job-");
        second.Stdout.ShouldContain("the odirouter daily budget of $0.10 would be exceeded");
        second.Stdout.ShouldContain("resume by themselves");
        var stats = await simulator.StatsAsync();
        stats.GetProperty("charged_usd").GetDecimal().ShouldBe(0.10m);
        stats.GetProperty("submits").GetInt64().ShouldBe(5);
        var status = JsonDocument.Parse((await CliProcess.RunAsync(_workspace.Root, environment, "status", "noon", "--json")).Stdout).RootElement;
        status.GetProperty("counts").GetProperty("succeeded").GetInt32().ShouldBe(2);
        status.GetProperty("counts").GetProperty("held").GetInt32().ShouldBe(2);
    }
}

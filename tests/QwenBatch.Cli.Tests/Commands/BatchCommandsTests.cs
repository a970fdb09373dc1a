using System.Text.Json;
using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>submit, status, cancel and retry as separate processes over one store, the way scripts and operators use them.</summary>
public sealed class BatchCommandsTests : IDisposable
{
    private const string ApiKey = "odr-batch-key-77c0e1d2";
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Submit_Json_PrintsBatchIdAndJobCountAndRecordsTheStorage()
    {
        var storage = Path.Combine(_workspace.Root, "elsewhere");

        var result = await CliProcess.RunAsync(_workspace.Root, null, "submit", "samples/products.csv", "--json", "--storage", storage);

        result.ExitCode.ShouldBe(0, result.Output);
        var json = JsonDocument.Parse(result.Stdout).RootElement;
        var id = json.GetProperty("batch").GetString();
        id.ShouldNotBeNullOrEmpty();
        json.GetProperty("jobs").GetInt32().ShouldBe(4);

        var status = await CliProcess.RunAsync(_workspace.Root, null, "status", id!, "--json");
        status.ExitCode.ShouldBe(0, status.Output);
        var batch = JsonDocument.Parse(status.Stdout).RootElement;
        batch.GetProperty("batch").GetString().ShouldBe(id);
        batch.GetProperty("storage").GetString().ShouldBe(Path.Combine(storage, "products"));
        batch.GetProperty("done").GetBoolean().ShouldBeFalse();
        batch.GetProperty("counts").GetProperty("pending").GetInt32().ShouldBe(4);
    }

    [Fact]
    public async Task Submit_InvalidManifest_Exits2AndEnqueuesNothing()
    {
        File.WriteAllText(Path.Combine(_workspace.Root, "bad.csv"), "id,prompt,images,n\nbad,p,samples/images/mug.png,9\n");

        var result = await CliProcess.RunAsync(_workspace.Root, null, "submit", "bad.csv", "--json");

        result.ExitCode.ShouldBe(2, result.Output);
        result.Stderr.ShouldContain("bad.csv:2: n:");
        Directory.Exists(Path.Combine(_workspace.Root, ".qwenbatch")).ShouldBeFalse();
    }

    [Fact]
    public async Task Status_AfterRun_PrintsCountsSpendAndTheBatchList()
    {
        var run = await CliProcess.RunAsync(_workspace.Root, null, "run", "samples/products.csv");
        run.ExitCode.ShouldBe(0, run.Output);

        var one = await CliProcess.RunAsync(_workspace.Root, null, "status", "products", "--json");
        var all = await CliProcess.RunAsync(_workspace.Root, null, "status", "--json");
        var table = await CliProcess.RunAsync(_workspace.Root, null, "status");

        one.ExitCode.ShouldBe(0, one.Output);
        var batch = JsonDocument.Parse(one.Stdout).RootElement;
        batch.GetProperty("name").GetString().ShouldBe("products");
        batch.GetProperty("done").GetBoolean().ShouldBeTrue();
        var counts = batch.GetProperty("counts");
        counts.GetProperty("succeeded").GetInt32().ShouldBe(4);
        counts.GetProperty("failed").GetInt32().ShouldBe(0);
        counts.GetProperty("cancelled").GetInt32().ShouldBe(0);
        counts.GetProperty("held").GetInt32().ShouldBe(0);
        batch.GetProperty("spent_usd").GetDecimal().ShouldBe(0.10m);

        var batches = JsonDocument.Parse(all.Stdout).RootElement.GetProperty("batches");
        batches.GetArrayLength().ShouldBe(1);
        batches[0].GetProperty("name").GetString().ShouldBe("products");

        table.ExitCode.ShouldBe(0, table.Output);
        table.Stdout.ShouldContain("products");
        table.Stdout.ShouldContain("succeeded");
        table.Stdout.ShouldContain("$0.10");
    }

    [Fact]
    public async Task Status_UnknownBatch_Exits1NamingIt()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "status", "no-such-batch");

        result.ExitCode.ShouldBe(1);
        result.Stderr.ShouldContain("No batch 'no-such-batch'");
        result.Output.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task Run_BudgetBelowTheCost_NeverExceededExits3ListsHeldJobsAndRetryReleasesThem()
    {
        var manifest = TestManifests.OneImageJobs(_workspace, "six", 6);

        var run = await CliProcess.RunAsync(_workspace.Root, null, "run", manifest, "--budget", "0.10");

        run.ExitCode.ShouldBe(3, run.Output);
        run.Stdout.ShouldContain("1 job(s) held");
        run.Stdout.ShouldContain("held job-");
        var status = JsonDocument.Parse((await CliProcess.RunAsync(_workspace.Root, null, "status", "six", "--json")).Stdout).RootElement;
        status.GetProperty("spent_usd").GetDecimal().ShouldBeLessThanOrEqualTo(0.10m);
        status.GetProperty("counts").GetProperty("succeeded").GetInt32().ShouldBe(5);
        status.GetProperty("counts").GetProperty("held").GetInt32().ShouldBe(1);

        var retry = await CliProcess.RunAsync(_workspace.Root, null, "retry", "six", "--budget", "0.20");
        retry.ExitCode.ShouldBe(0, retry.Output);
        retry.Stdout.ShouldContain("1 held job(s) released");
        var rerun = await CliProcess.RunAsync(_workspace.Root, null, "run", manifest);

        rerun.ExitCode.ShouldBe(0, rerun.Output);
        var after = JsonDocument.Parse((await CliProcess.RunAsync(_workspace.Root, null, "status", "six", "--json")).Stdout).RootElement;
        after.GetProperty("counts").GetProperty("succeeded").GetInt32().ShouldBe(6);
        after.GetProperty("spent_usd").GetDecimal().ShouldBe(0.12m);
    }

    [Fact]
    public async Task Cancel_FromAnotherProcess_RunExits3AndNothingIsSubmittedAfterIt()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "4-5");
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = ApiKey,
            // One task at a time, so most jobs are still waiting to be submitted when the cancel comes.
            ["Providers__Odirouter__MaxInFlight"] = "1",
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:01",
        };
        var manifest = TestManifests.OneImageJobs(_workspace, "slow", 6);
        await using var run = CliProcess.Start(_workspace.Root, environment, "run", manifest, "--provider", "odirouter");
        for (var i = 0; i < 300 && await simulator.SubmitsAsync() < 1; i++)
        {
            await Task.Delay(50);
        }

        var cancel = await CliProcess.RunAsync(_workspace.Root, environment, "cancel", "slow");
        var submitsAtCancel = await simulator.SubmitsAsync();
        var result = await run.WaitAsync();

        cancel.ExitCode.ShouldBe(0, cancel.Output);
        cancel.Stdout.ShouldContain("cancel recorded");
        result.ExitCode.ShouldBe(3, result.Output);
        submitsAtCancel.ShouldBeLessThan(6);
        (await simulator.SubmitsAsync()).ShouldBe(submitsAtCancel);
        (await simulator.StatsAsync()).GetProperty("cancels").GetInt64().ShouldBeGreaterThanOrEqualTo(1);
        var status = JsonDocument.Parse((await CliProcess.RunAsync(_workspace.Root, null, "status", "slow", "--json")).Stdout).RootElement;
        status.GetProperty("counts").GetProperty("cancelled").GetInt32().ShouldBeGreaterThanOrEqualTo(6 - (int)submitsAtCancel);
        status.GetProperty("cancel_requested").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task Retry_FailedOnlyWithHeldOnly_Exits1WithOneLine()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "retry", "any", "--failed-only", "--held-only");

        result.ExitCode.ShouldBe(1);
        result.Stderr.ShouldContain("--failed-only and --held-only cannot be used together");
        result.Output.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task Retry_CancelledBatch_RequeuesItsJobsForTheNextRun()
    {
        var submit = await CliProcess.RunAsync(_workspace.Root, null, "submit", "samples/products.csv");
        submit.ExitCode.ShouldBe(0, submit.Output);
        (await CliProcess.RunAsync(_workspace.Root, null, "cancel", "products")).ExitCode.ShouldBe(0);

        var retry = await CliProcess.RunAsync(_workspace.Root, null, "retry", "products", "--failed-only");
        var run = await CliProcess.RunAsync(_workspace.Root, null, "run", "samples/products.csv");

        retry.ExitCode.ShouldBe(0, retry.Output);
        retry.Stdout.ShouldContain("requeued 4 job(s)");
        run.ExitCode.ShouldBe(0, run.Output);
    }
}

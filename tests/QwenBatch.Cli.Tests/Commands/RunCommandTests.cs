using System.Diagnostics;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Commands;

public sealed class RunCommandTests : IDisposable
{
    private const string ApiKey = "odr-test-key-5f1c2b7a9e";
    private const int SampleJobs = 4;
    private const int SampleImages = 5;
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Run_QuickStartOnEmbeddedStore_WritesEveryOutputAndAReportRowPerJob()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "run", "samples/products.csv", "--provider", "simulator");

        result.ExitCode.ShouldBe(0, result.Output);
        AssertSampleOutputs(_workspace.BatchDir("products"));
        File.Exists(Path.Combine(_workspace.Root, ".qwenbatch", "qwenbatch.db")).ShouldBeTrue();
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Run_OdirouterAgainstSeparateSimulator_CompletesAndRerunSubmitsNothing(string backend)
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.2-0.4");
        var args = new List<string> { "run", "samples/products.csv", "--provider", "odirouter" };
        if (backend == "postgres")
        {
            args.AddRange(["--database", await (await PostgresServer.GetAsync()).CreateDatabaseAsync("cli_run")]);
        }

        var environment = Environment(simulator);
        var first = await CliProcess.RunAsync(_workspace.Root, environment, [.. args]);

        first.ExitCode.ShouldBe(0, first.Output);
        AssertSampleOutputs(_workspace.BatchDir("products"));
        (await simulator.SubmitsAsync()).ShouldBe(SampleJobs);

        var second = await CliProcess.RunAsync(_workspace.Root, environment, [.. args]);

        second.ExitCode.ShouldBe(0, second.Output);
        second.Stderr.ShouldContain("Resuming batch 'products' (0 new job(s))");
        (await simulator.SubmitsAsync()).ShouldBe(SampleJobs);
        (first.Output + second.Output).ShouldNotContain(ApiKey);
        File.ReadAllText(Path.Combine(_workspace.BatchDir("products"), "report.csv")).ShouldNotContain(ApiKey);
    }

    [Fact]
    public async Task Run_InterruptedWithCtrlC_Exits130AndRerunFinishesWithoutSubmittingAgain()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "4-5");
        var environment = Environment(simulator);
        var clock = Stopwatch.StartNew();
        await using (var run = CliProcess.Start(_workspace.Root, environment, "run", "samples/products.csv", "--provider", "odirouter"))
        {
            for (var i = 0; i < 300 && await simulator.SubmitsAsync() < SampleJobs; i++)
            {
                await Task.Delay(50);
            }

            (await simulator.SubmitsAsync()).ShouldBe(SampleJobs);
            var sentAt = clock.Elapsed;
            run.Interrupt();
            var interrupted = await run.WaitAsync();
            interrupted.ExitCode.ShouldBe(130, $"SIGINT sent {sentAt.TotalSeconds:0.0} s after the start, exit seen at {clock.Elapsed.TotalSeconds:0.0} s\n{interrupted.Output}");
            interrupted.Stderr.ShouldContain("Run the same command again");
        }

        var rerun = await CliProcess.RunAsync(_workspace.Root, environment, "run", "samples/products.csv", "--provider", "odirouter");

        rerun.ExitCode.ShouldBe(0, rerun.Output);
        AssertSampleOutputs(_workspace.BatchDir("products"));
        (await simulator.SubmitsAsync()).ShouldBe(SampleJobs);
    }

    [Fact]
    public async Task Run_InvalidManifest_Exits2WithLineAndFieldAndEnqueuesNothing()
    {
        File.WriteAllText(Path.Combine(_workspace.Root, "bad.csv"), "id,prompt,images,n\nok,p,samples/images/mug.png,1\nbad,p,samples/images/mug.png,9\n");

        var result = await CliProcess.RunAsync(_workspace.Root, null, "run", "bad.csv", "--provider", "simulator");

        result.ExitCode.ShouldBe(2);
        result.Stderr.ShouldContain("bad.csv:3: n: '9' is not allowed; expected a whole number from 1 to 6");
        result.Stderr.ShouldContain("nothing was enqueued");
        Directory.Exists(Path.Combine(_workspace.Root, ".qwenbatch")).ShouldBeFalse();
    }

    [Fact]
    public async Task Run_UnknownOption_Exits1WithoutAStackTrace()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "run", "samples/products.csv", "--no-such-option");

        result.ExitCode.ShouldBe(1);
        result.Output.ShouldContain("--no-such-option");
        result.Output.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task Run_OdirouterWithoutKey_Exits1NamingTheVariable()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, new Dictionary<string, string> { ["ODIROUTER_API_KEY"] = "" },
            "run", "samples/products.csv", "--provider", "odirouter");

        result.ExitCode.ShouldBe(1);
        result.Stderr.ShouldContain("ODIROUTER_API_KEY");
    }

    private static Dictionary<string, string> Environment(SimulatorProcess simulator) => new()
    {
        ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
        ["ODIROUTER_API_KEY"] = ApiKey,
        ["Worker__FirstPollDelay"] = "00:00:00.200",
        ["Worker__MaxPollInterval"] = "00:00:01",
    };

    private static void AssertSampleOutputs(string batchDir)
    {
        var images = Directory.GetFiles(batchDir, "*.png").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        images.ShouldBe(["backpack-green.png", "lamp-yellow-1.png", "lamp-yellow-2.png", "mug-red.png", "sneaker-blue.png"]);
        images.Count.ShouldBe(SampleImages);
        foreach (var image in images)
        {
            var bytes = File.ReadAllBytes(Path.Combine(batchDir, image!));
            bytes.AsSpan(0, 8).ToArray().ShouldBe(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
            System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16, 4)).ShouldBeGreaterThan(0);
        }

        Directory.GetFiles(batchDir, "*.part", SearchOption.AllDirectories).ShouldBeEmpty();
        var rows = File.ReadAllLines(Path.Combine(batchDir, "report.csv"));
        rows[0].ShouldBe("id,status,provider,request_id,attempts,images,output_files,cost_usd,latency_s,queue_wait_s,error,job,replaces_job,change,sku");
        rows.Skip(1).Count().ShouldBe(SampleJobs);
        rows.Skip(1).ShouldAllBe(r => r.Contains(",succeeded,", StringComparison.Ordinal));
    }
}

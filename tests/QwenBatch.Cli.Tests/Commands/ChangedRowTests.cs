using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>A manifest row that changed between imports: its new job replaces the old one, and the report says so.</summary>
public sealed class ChangedRowTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Run_ChangedRows_NewJobsReplaceOldOnesWithOwnFilesAndOneReportRowPerId(string backend)
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.1-0.2");
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = "odr-test-key-changed-rows",
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:01",
        };
        string[] store = backend == "postgres" ? ["--database", await (await PostgresServer.GetAsync()).CreateDatabaseAsync("cli_changed")] : [];
        var manifest = Path.Combine(_workspace.Root, "shop.csv");
        File.WriteAllText(manifest, "id,prompt,images\nmug,White background,samples/images/mug.png\nlamp,White background,samples/images/lamp.png\n");

        // Enqueued, not run: both jobs wait in 'pending'. Then the lamp row changes before anything ran.
        var submitted = await CliProcess.RunAsync(_workspace.Root, environment, ["submit", "shop.csv", "--provider", "odirouter", .. store]);
        submitted.ExitCode.ShouldBe(0, submitted.Output);
        File.WriteAllText(manifest, "id,prompt,images\nmug,White background,samples/images/mug.png\nlamp,Warm studio light,samples/images/lamp.png\n");

        var first = await CliProcess.RunAsync(_workspace.Root, environment, ["run", "shop.csv", "--provider", "odirouter", .. store]);

        first.ExitCode.ShouldBe(0, first.Output);
        first.Stderr.ShouldContain("Resuming batch 'shop' (1 new job(s), of which 1 replace jobs of changed rows)");
        (await simulator.SubmitsAsync()).ShouldBe(2);
        var dir = _workspace.BatchDir("shop");
        Images(dir).ShouldBe(["lamp-r2.png", "mug.png"]);
        var rows = ReportFiles.ReadCsv(Path.Combine(dir, "report.csv"));
        rows.Select(r => (r["id"], r["status"])).ShouldBe([("lamp", "succeeded"), ("mug", "succeeded")]);
        var lamp = rows[0];
        lamp["output_files"].ShouldBe("lamp-r2.png");
        lamp["replaces_job"].ShouldNotBeEmpty();
        lamp["change"].ShouldBe($"changed since the previous import: replaces job {lamp["replaces_job"]}, which was cancelled before it was submitted");
        rows[1]["change"].ShouldBeEmpty();

        // The mug row changes after its job succeeded: a new job, its own file, the old file left as it was.
        var oldMug = File.ReadAllBytes(Path.Combine(dir, "mug.png"));
        File.WriteAllText(manifest, "id,prompt,images\nmug,Marble table,samples/images/mug.png\nlamp,Warm studio light,samples/images/lamp.png\n");

        var second = await CliProcess.RunAsync(_workspace.Root, environment, ["run", "shop.csv", "--provider", "odirouter", .. store]);

        second.ExitCode.ShouldBe(0, second.Output);
        (await simulator.SubmitsAsync()).ShouldBe(3);
        Images(dir).ShouldBe(["lamp-r2.png", "mug-r2.png", "mug.png"]);
        File.ReadAllBytes(Path.Combine(dir, "mug.png")).ShouldBe(oldMug);
        rows = ReportFiles.ReadCsv(Path.Combine(dir, "report.csv"));
        rows.Select(r => (r["id"], r["status"], r["output_files"])).ShouldBe([("lamp", "succeeded", "lamp-r2.png"), ("mug", "succeeded", "mug-r2.png")]);
        rows[0]["change"].ShouldStartWith("changed since the previous import: replaces job ");
        rows[1]["change"].ShouldBe($"changed since the previous import: replaces job {rows[1]["replaces_job"]}, which had succeeded (its files stay: mug.png)");

        // The same manifest again: nothing changed, nothing submitted.
        var third = await CliProcess.RunAsync(_workspace.Root, environment, ["run", "shop.csv", "--provider", "odirouter", .. store]);
        third.ExitCode.ShouldBe(0, third.Output);
        third.Stderr.ShouldContain("Resuming batch 'shop' (0 new job(s))");
        (await simulator.SubmitsAsync()).ShouldBe(3);
    }

    private static List<string> Images(string dir) =>
        Directory.GetFiles(dir, "*.png").Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToList();
}

using System.Text.Json;
using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>
/// The reports of real runs against a separately started simulator: report.csv sums to what the simulator charged,
/// errors.csv names exactly the jobs that did not succeed, truncated downloads are fetched again, nothing partial stays.
/// </summary>
public sealed class ReportCommandTests : IDisposable
{
    private const int Jobs = 24;
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Run_BatchWithProviderFailures_ReportCostSumsToSimulatorChargesAndErrorsListTheFailures()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.1-0.3", "--fail-rate", "0.3");
        ReportFiles.WriteManifest(_workspace.Root, "costs", Jobs, i => i == 5 ? "=HYPERLINK(\"http://evil\",\"x\")" : $"SKU-{i}");

        var result = await CliProcess.RunAsync(_workspace.Root, Environment(simulator), "run", "samples/costs.csv", "--provider", "odirouter");

        result.ExitCode.ShouldBe(3, result.Output);
        var folder = _workspace.BatchDir("costs");
        var report = ReportFiles.ReadCsv(Path.Combine(folder, "report.csv"));
        report.Count.ShouldBe(Jobs);
        var charged = (await simulator.StatsAsync()).GetProperty("charged_usd").GetDecimal();
        report.Sum(r => ReportFiles.Money(r["cost_usd"])).ShouldBe(charged);
        report.Where(r => r["status"] == "failed").ShouldNotBeEmpty();
        report.Where(r => r["status"] != "succeeded").ShouldAllBe(r => r["cost_usd"] == "0" && r["error"].Length > 0);
        report.Single(r => r["id"] == "job-005")["sku"].ShouldNotStartWith("=");

        var errors = ReportFiles.ReadCsv(Path.Combine(folder, "errors.csv"));
        errors.Select(e => e["id"]).Order(StringComparer.Ordinal).ShouldBe(report.Where(r => r["status"] != "succeeded").Select(r => r["id"]).Order(StringComparer.Ordinal));
        errors.ShouldAllBe(e => e["prompt"].Length > 0 && e["images"].Length > 0 && e["error"].Length > 0);

        foreach (var row in report.Where(r => r["status"] == "succeeded"))
        {
            var files = row["output_files"].Split('|');
            files.Length.ShouldBe(int.Parse(row["images"], System.Globalization.CultureInfo.InvariantCulture));
            files.ShouldAllBe(f => File.Exists(Path.Combine(folder, f)));
        }

        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "report.json")));
        json.RootElement.GetProperty("totals").GetProperty("cost_usd").GetDecimal().ShouldBe(charged);
        File.Exists(Path.Combine(folder, "report.html")).ShouldBeTrue();
        Directory.GetFiles(folder, "*.part", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task Report_OnDemandFromTheStore_RewritesTheAskedFormat()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.1-0.2");
        var run = await CliProcess.RunAsync(_workspace.Root, Environment(simulator), "run", "samples/products.csv", "--provider", "odirouter");
        run.ExitCode.ShouldBe(0, run.Output);
        var json = Path.Combine(_workspace.BatchDir("products"), "report.json");
        File.Delete(json);

        var result = await CliProcess.RunAsync(_workspace.Root, null, "report", "products", "--format", "json");

        result.ExitCode.ShouldBe(0, result.Output);
        result.Stdout.Trim().ShouldBe(json);
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        document.RootElement.GetProperty("totals").GetProperty("jobs").GetInt32().ShouldBe(4);
        document.RootElement.GetProperty("jobs").GetArrayLength().ShouldBe(4);
    }

    [Fact]
    public async Task Report_UnknownBatch_Exits1NamingIt()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "report", "no-such-batch");

        result.ExitCode.ShouldBe(1);
        result.Stderr.ShouldContain("no-such-batch");
    }

    [Fact]
    public async Task Run_TruncatedDownloads_FetchedAgainAndEveryFileWhole()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.1-0.2", "--truncate-rate", "0.5");
        ReportFiles.WriteManifest(_workspace.Root, "cut", Jobs);
        var environment = Environment(simulator);
        environment["Worker__MaxAttempts"] = "30";

        var result = await CliProcess.RunAsync(_workspace.Root, environment, "run", "samples/cut.csv", "--provider", "odirouter");

        result.ExitCode.ShouldBe(0, result.Output);
        (await simulator.StatsAsync()).GetProperty("faults").GetProperty("truncated").GetInt64().ShouldBeGreaterThan(0);
        var folder = _workspace.BatchDir("cut");
        var pngs = Directory.GetFiles(folder, "*.png");
        pngs.Length.ShouldBe(Jobs + 1);
        byte[] iend = [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82];
        foreach (var png in pngs)
        {
            File.ReadAllBytes(png)[^iend.Length..].ShouldBe(iend, png);
        }

        Directory.GetFiles(folder, "*.part", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    private static Dictionary<string, string> Environment(SimulatorProcess simulator) => new()
    {
        ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
        ["Providers__Odirouter__Resilience__RetryBaseDelay"] = "00:00:00.050",
        ["ODIROUTER_API_KEY"] = "odr-report-test-key",
        ["Worker__FirstPollDelay"] = "00:00:00.200",
        ["Worker__MaxPollInterval"] = "00:00:01",
        ["Worker__RetryBaseDelay"] = "00:00:00.100",
        ["Worker__RetryMaxDelay"] = "00:00:00.500",
        ["Worker__MaxProviderResubmits"] = "0",
    };
}

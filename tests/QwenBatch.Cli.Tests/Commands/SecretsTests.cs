using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>The API key appears nowhere a user or an attacker could read it, even in debug logs through faults.</summary>
public sealed class SecretsTests : IDisposable
{
    private const string ApiKey = "odr-secret-key-3b9f61c2d8e4";
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Run_VerboseThroughServerErrorsAndFailedTasks_KeyIsInNoOutputLogReportOrStateFile()
    {
        // Seeded, so the first API request is answered 503 and retried (the debug line asserted below). Unseeded, every
        // request of the 4 jobs now and then passed the 0.3 error rate, there was no retry to log, and the test failed.
        var seeded = new Dictionary<string, string> { ["Simulator__RandomSeed"] = "2" };
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.2-0.4", seeded, "--error-rate", "0.3", "--fail-rate", "0.2");
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = ApiKey,
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:01",
            ["Worker__RetryBaseDelay"] = "00:00:00.050",
            ["Worker__RetryMaxDelay"] = "00:00:00.200",
        };

        var run = await CliProcess.RunAsync(_workspace.Root, environment, "run", "samples/products.csv", "--provider", "odirouter", "--verbose");
        var status = await CliProcess.RunAsync(_workspace.Root, environment, "status", "products", "--json", "--verbose");

        run.ExitCode.ShouldBeOneOf(0, 3);
        run.Stderr.ShouldContain("DBG");
        status.ExitCode.ShouldBe(0, status.Output);
        (run.Output + status.Output).ShouldNotContain(ApiKey);
        var files = Directory.GetFiles(_workspace.Root, "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}samples{Path.DirectorySeparatorChar}", StringComparison.Ordinal)).ToList();
        files.ShouldContain(f => f.Contains($"{Path.DirectorySeparatorChar}logs{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && f.EndsWith(".jsonl", StringComparison.Ordinal));
        files.ShouldContain(f => f.EndsWith("qwenbatch.db", StringComparison.Ordinal));
        files.ShouldContain(f => f.EndsWith("report.csv", StringComparison.Ordinal));
        foreach (var file in files)
        {
            var bytes = await ReadSharedAsync(file);
            System.Text.Encoding.UTF8.GetString(bytes).ShouldNotContain(ApiKey, customMessage: file);
        }

        var log = System.Text.Encoding.UTF8.GetString(await ReadSharedAsync(Directory.GetFiles(Path.Combine(_workspace.Root, "logs")).Single()));
        log.ShouldContain("\"EditId\":");
        log.ShouldContain("\"HangfireJob\":");
        log.ShouldContain("\"BatchId\":");
    }

    private static async Task<byte[]> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }
}

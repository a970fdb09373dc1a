using System.Globalization;
using System.Text;
using System.Text.Json;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>
/// A manifest of more than one staged chunk (a thousand jobs) on PostgreSQL: its jobs are staged at import and become
/// job rows as work needs them, and the commands around a batch must not tell the difference.
/// </summary>
public sealed class StagedImportTests : IDisposable
{
    private const int Rows = 2_500;

    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Resubmit_ChangedRowOfAStagedBatch_SupersedesThatJobOnly()
    {
        var store = await SubmitAsync("cli_staged_resubmit");

        // Row 2,000 changes: the resumed import compares with every job, staged ones included, and supersedes that one.
        await File.WriteAllTextAsync(Path.Combine(_workspace.Root, "big.csv"), Csv(changed: 2_000));
        var resubmitted = await CliProcess.RunAsync(_workspace.Root, null, ["submit", "big.csv", "--provider", "odirouter", .. store]);

        resubmitted.ExitCode.ShouldBe(0, resubmitted.Output);
        resubmitted.Stdout.ShouldContain("resumed: 1 new job(s), of which 1 replace jobs of changed rows");
        (await CountsAsync(store)).ShouldBe(new Dictionary<string, int> { ["pending"] = Rows, ["cancelled"] = 1 });
    }

    [Fact]
    public async Task Cancel_StagedBatch_CancelsEveryJob()
    {
        var store = await SubmitAsync("cli_staged_cancel");

        var cancel = await CliProcess.RunAsync(_workspace.Root, null, ["cancel", "big", .. store]);

        cancel.ExitCode.ShouldBe(0, cancel.Output);
        (await CountsAsync(store)).ShouldBe(new Dictionary<string, int> { ["cancelled"] = Rows });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Submit_LargeManifestInvalidOnItsLastRow_EnqueuesNothingAndReportsTheLine(bool postgres)
    {
        // More jobs than the validating pass hands on untaken (8 chunks of 1,000), so the import has taken jobs before the
        // file's end is read; the error there rolls the import back.
        const int rows = 30_000;
        string[] store = postgres ? ["--database", await (await PostgresServer.GetAsync()).CreateDatabaseAsync("cli_staged_invalid")] : [];
        await File.WriteAllTextAsync(Path.Combine(_workspace.Root, "big.csv"), Csv(changed: null, rows) + "item-bad,,https://cdn.example.com/items/bad.jpg\n");

        var submitted = await CliProcess.RunAsync(_workspace.Root, null, ["submit", "big.csv", "--provider", "odirouter", .. store]);

        submitted.ExitCode.ShouldBe(2, submitted.Output);
        submitted.Stderr.ShouldContain($"big.csv:{rows + 2}: prompt: is empty; expected the edit instruction");
        submitted.Stderr.ShouldContain("The manifest has 1 error(s); nothing was enqueued.");
        var status = await CliProcess.RunAsync(_workspace.Root, null, ["status", "--json", .. store]);
        status.ExitCode.ShouldBe(0, status.Output);
        JsonDocument.Parse(status.Stdout).RootElement.GetProperty("batches").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task Submit_LargeManifestInvalidOnItsLastRowWithSkipInvalid_EnqueuesTheValidJobs()
    {
        string[] store = ["--database", await (await PostgresServer.GetAsync()).CreateDatabaseAsync("cli_staged_skip")];
        await File.WriteAllTextAsync(Path.Combine(_workspace.Root, "big.csv"), Csv(changed: null) + "item-bad,,https://cdn.example.com/items/bad.jpg\n");

        var submitted = await CliProcess.RunAsync(_workspace.Root, null, ["submit", "big.csv", "--provider", "odirouter", "--skip-invalid", .. store]);

        submitted.ExitCode.ShouldBe(0, submitted.Output);
        submitted.Stdout.ShouldContain($"enqueued: {Rows} job(s)");
        submitted.Stderr.ShouldContain("Skipped 1 invalid job(s)");
        (await CountsAsync(store)).ShouldBe(new Dictionary<string, int> { ["pending"] = Rows });
    }

    private async Task<string[]> SubmitAsync(string databaseName)
    {
        string[] store = ["--database", await (await PostgresServer.GetAsync()).CreateDatabaseAsync(databaseName)];
        await File.WriteAllTextAsync(Path.Combine(_workspace.Root, "big.csv"), Csv(changed: null));

        var submitted = await CliProcess.RunAsync(_workspace.Root, null, ["submit", "big.csv", "--provider", "odirouter", .. store]);

        submitted.ExitCode.ShouldBe(0, submitted.Output);
        submitted.Stdout.ShouldContain($"enqueued: {Rows} job(s)");
        (await CountsAsync(store)).ShouldBe(new Dictionary<string, int> { ["pending"] = Rows });
        return store;
    }

    private async Task<Dictionary<string, int>> CountsAsync(string[] store)
    {
        var status = await CliProcess.RunAsync(_workspace.Root, null, ["status", "big", "--json", .. store]);
        status.ExitCode.ShouldBe(0, status.Output);
        return JsonDocument.Parse(status.Stdout).RootElement.GetProperty("counts").EnumerateObject()
            .Where(c => c.Value.GetInt32() != 0)
            .ToDictionary(c => c.Name, c => c.Value.GetInt32());
    }

    private static string Csv(int? changed, int rows = Rows)
    {
        var csv = new StringBuilder("id,prompt,images\n");
        for (var i = 1; i <= rows; i++)
        {
            var prompt = i == changed ? "Warm studio light" : "White background";
            csv.Append(CultureInfo.InvariantCulture, $"item-{i:D5},{prompt},https://cdn.example.com/items/{i:D5}.jpg\n");
        }

        return csv.ToString();
    }
}

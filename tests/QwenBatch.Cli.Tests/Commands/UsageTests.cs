using System.Globalization;
using System.Text.RegularExpressions;
using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>Help, wrong usage and missing files: what a user sees before anything runs.</summary>
public sealed class UsageTests : IDisposable
{
    private static readonly string[] Commands = ["run", "submit", "validate", "worker", "status", "cancel", "retry", "simulate"];
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Help_Root_ListsEveryCommandAndTheExitCodes()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "--help");

        result.ExitCode.ShouldBe(0, result.Output);
        foreach (var command in Commands)
        {
            result.Stdout.ShouldContain($"  {command}");
        }

        result.Stdout.ShouldContain("Exit codes: 0 all jobs succeeded; 1 usage or configuration error; 2 invalid manifest");
        result.Stdout.ShouldContain("130 interrupted");
    }

    [Theory]
    [InlineData("run", "--budget")]
    [InlineData("submit", "--json")]
    [InlineData("validate", "--json")]
    [InlineData("worker", "--database")]
    [InlineData("status", "--json")]
    [InlineData("cancel", "<batch>")]
    [InlineData("retry", "--held-only")]
    [InlineData("simulate", "--port")]
    [InlineData("simulate", "--webhook-bad-signature-rate")]
    public async Task Help_EachCommand_Exits0WithItsUsageAndOptions(string command, string option)
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, command, "--help");

        result.ExitCode.ShouldBe(0, result.Output);
        result.Stdout.ShouldContain($"qwenbatch {command}");
        result.Stdout.ShouldContain(option);
        result.Stdout.ShouldContain("Exit codes:");
    }

    [Theory]
    [InlineData("run", new[] { 0, 1, 2, 3, 130 })]
    [InlineData("submit", new[] { 0, 1, 2 })]
    [InlineData("validate", new[] { 0, 1, 2 })]
    [InlineData("worker", new[] { 0, 1 })]
    [InlineData("status", new[] { 0, 1 })]
    [InlineData("cancel", new[] { 0, 1 })]
    [InlineData("retry", new[] { 0, 1 })]
    [InlineData("serve", new[] { 0, 1 })]
    [InlineData("simulate", new[] { 0, 1 })]
    [InlineData("report", new[] { 0, 1 })]
    [InlineData("schedule add", new[] { 0, 1 })]
    [InlineData("schedule trigger", new[] { 0, 1, 2 })]
    public async Task Help_EachCommand_ListsOnlyTheExitCodesItCanReturn(string command, int[] codes)
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, [.. command.Split(' '), "--help"]);

        result.ExitCode.ShouldBe(0, result.Output);

        // The command's own description comes first; a group's help lists its subcommands' lines after it.
        var line = Regex.Match(result.Stdout, @"Exit codes: (.*?)\.\s*$", RegexOptions.Multiline);
        line.Success.ShouldBeTrue(result.Stdout);
        var listed = line.Groups[1].Value.Split(';').Select(part => int.Parse(part.Trim().Split(' ')[0], CultureInfo.InvariantCulture));
        listed.ShouldBe(codes, $"qwenbatch {command} --help: {line.Value}");
    }

    [Fact]
    public async Task Parse_UnknownCommand_Exits1WithOneErrorLineAndTheUsage()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "frobnicate");

        result.ExitCode.ShouldBe(1);
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].ShouldBe("error: Unrecognized command or argument 'frobnicate'.");
        lines[1].ShouldBe("Usage: qwenbatch <command> [options]");
        result.Output.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task Parse_BadBudget_Exits1NamingTheOptionAndTheCommandUsage()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "run", "samples/products.csv", "--budget", "ten");

        result.ExitCode.ShouldBe(1);
        result.Stderr.ShouldContain("--budget must be an amount in USD greater than 0");
        result.Stderr.ShouldContain("Usage: qwenbatch run <manifest> [options]");
        result.Output.ShouldNotContain("   at ");
    }

    [Theory]
    [InlineData("--webhook-delay", "soon", "--webhook-delay 'soon' is not valid; expected seconds such as 2 or a range such as 0.3-0.8.")]
    [InlineData("--webhook-secret", "not-a-whsec-secret", "Simulator WebhookSecret must be \"whsec_\" followed by the key, without spaces.")]
    public async Task Simulate_BadWebhookOption_Exits1SayingWhatIsExpected(string option, string value, string message)
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "simulate", "--port", "0", option, value);

        result.ExitCode.ShouldBe(1, result.Output);
        result.Stderr.ShouldContain(message);
        result.Output.ShouldNotContain("not-a-whsec-secret");
        result.Output.ShouldNotContain("   at ");
    }

    [Fact]
    public async Task Run_MissingManifest_Exits2NamingTheFile()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "run", "no-such-manifest.csv");

        result.ExitCode.ShouldBe(2);
        result.Stderr.ShouldContain("the manifest file 'no-such-manifest.csv' does not exist");
        result.Stderr.ShouldContain("nothing was enqueued");
        result.Output.ShouldNotContain("--skip-invalid");
        result.Output.ShouldNotContain("   at ");
    }
}

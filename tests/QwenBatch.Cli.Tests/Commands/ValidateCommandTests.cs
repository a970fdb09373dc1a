using System.Text.Json;
using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Commands;

public sealed class ValidateCommandTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Validate_InvalidManifestAsJson_Exits2WithEveryErrorAndItsLine()
    {
        File.WriteAllText(Path.Combine(_workspace.Root, "samples", "bad.jsonl"),
            "{\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"images/mug.png\"], \"size\": \"1000*1000\"}\n"
            + "{\"id\": \"b\", \"prompt\": \"\", \"images\": [\"images/mug.png\"]}\n"
            + "{\"id\": \"c\", \"prompt\": \"p\", \"images\": [\"images/none.png\"], \"n\": 7}\n");

        var result = await CliProcess.RunAsync(_workspace.Root, null, "validate", "samples/bad.jsonl", "--json");

        result.ExitCode.ShouldBe(2, result.Output);
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        root.EnumerateObject().Select(p => p.Name).ShouldBe(["valid", "jobs", "errors", "warnings"]);
        root.GetProperty("valid").GetBoolean().ShouldBeFalse();
        root.GetProperty("jobs").GetInt32().ShouldBe(1);
        root.GetProperty("errors").EnumerateArray().Select(e => (e.GetProperty("line").GetInt32(), e.GetProperty("field").GetString())).ShouldBe(
            [(2, "prompt"), (3, "images"), (3, "n")]);
        root.GetProperty("errors")[2].GetProperty("message").GetString().ShouldBe("'7' is not allowed; expected a whole number from 1 to 6");
        var warning = root.GetProperty("warnings").EnumerateArray().ShouldHaveSingleItem();
        warning.GetProperty("line").GetInt32().ShouldBe(1);
        warning.GetProperty("message").GetString().ShouldBe("'1000*1000' is adjusted to 1008*1008; odirouter uses multiples of 16");
    }

    [Fact]
    public async Task Validate_LocalizationSample_Exits0CountingEveryLocale()
    {
        var result = await CliProcess.RunAsync(_workspace.Root, null, "validate", "samples/localization.json", "--json");

        result.ExitCode.ShouldBe(0, result.Output);
        using var json = JsonDocument.Parse(result.Stdout);
        json.RootElement.GetProperty("valid").GetBoolean().ShouldBeTrue();
        json.RootElement.GetProperty("jobs").GetInt32().ShouldBe(5);
    }

    [Fact]
    public async Task ValidateAndSubmit_WaveSpeedOutputJobClashingWithAnId_Exit2WithTheLine_NothingEnqueued()
    {
        // n=2 on WaveSpeed is two jobs, a-1 and a-2; the next row's id a-1 would be the same job. validate used to call this
        // valid, and submit then stopped with exit 1 when the import refused the key.
        File.WriteAllText(Path.Combine(_workspace.Root, "split.csv"), "id,prompt,images,n\na,p,samples/images/mug.png,2\na-1,p,samples/images/mug.png,1\n");
        var environment = new Dictionary<string, string> { ["QWENBATCH_Providers__WaveSpeed__ApiKey"] = "ws-test-key" };
        const string Error = "split.csv:3: id: 'a-1' is already the job of one of line 2's outputs";

        var validate = await CliProcess.RunAsync(_workspace.Root, environment, "validate", "split.csv", "--provider", "wavespeed");
        var submit = await CliProcess.RunAsync(_workspace.Root, environment, "submit", "split.csv", "--provider", "wavespeed");

        validate.ExitCode.ShouldBe(2, validate.Output);
        validate.Output.ShouldContain(Error);
        submit.ExitCode.ShouldBe(2, submit.Output);
        submit.Stderr.ShouldContain(Error);
        Directory.Exists(_workspace.BatchDir("split")).ShouldBeFalse();
        var status = await CliProcess.RunAsync(_workspace.Root, null, "status", "--json");
        status.Stdout.ShouldNotContain("split");
    }

    [Fact]
    public async Task Run_SkipInvalid_EnqueuesTheValidJobsAndListsTheSkippedOnes()
    {
        File.WriteAllText(Path.Combine(_workspace.Root, "mixed.csv"), "id,prompt,images\nok,p,samples/images/mug.png\nbad,,samples/images/mug.png\n");

        var result = await CliProcess.RunAsync(_workspace.Root, null, "run", "mixed.csv", "--provider", "simulator", "--skip-invalid");

        result.ExitCode.ShouldBe(0, result.Output);
        result.Stderr.ShouldContain("mixed.csv:3: prompt: is empty; expected the edit instruction");
        result.Stderr.ShouldContain("Skipped 1 invalid job(s)");
        File.ReadAllText(Path.Combine(_workspace.BatchDir("mixed"), "skipped.csv")).ShouldBe(
            "line,id,field,error,row\n3,bad,prompt,is empty; expected the edit instruction,\"{\"\"id\"\":\"\"bad\"\",\"\"prompt\"\":\"\"\"\",\"\"images\"\":\"\"samples/images/mug.png\"\"}\"\n");
        var errors = File.ReadAllLines(Path.Combine(_workspace.BatchDir("mixed"), "errors.csv"));
        errors.Length.ShouldBe(2);
        errors[1].ShouldStartWith("bad,,samples/images/mug.png,");
        errors[1].ShouldEndWith("line 3: prompt: is empty; expected the edit instruction");
        File.Exists(Path.Combine(_workspace.BatchDir("mixed"), "ok.png")).ShouldBeTrue();
    }
}

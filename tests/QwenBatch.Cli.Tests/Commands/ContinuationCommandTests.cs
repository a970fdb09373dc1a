using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Http;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>
/// Continuations fire whoever ends the batch — here the processes a single-machine user runs, with no worker anywhere —
/// and a scheduled manifest that is invalid fails its occurrence as a visible failed batch.
/// </summary>
public sealed class ContinuationCommandTests : IDisposable
{
    private const string Secret = "whsec-cli-test-9a7e";
    private static readonly Dictionary<string, string> Signing = new() { ["Continuations__WebhookSecret"] = Secret };
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Run_WithThenWebhook_PostsTheSignedSummaryOnceWhenItsBatchEnds()
    {
        using var hook = new LoopbackHook();

        var run = await CliProcess.RunAsync(_workspace.Root, Signing, "run", "samples/products.csv", "--provider", "simulator", "--then-webhook", hook.Url);
        var rerun = await CliProcess.RunAsync(_workspace.Root, Signing, "run", "samples/products.csv", "--provider", "simulator", "--then-webhook", hook.Url);

        run.ExitCode.ShouldBe(0, run.Output);
        run.Stderr.ShouldContain("Continuation: webhook 200");
        rerun.ExitCode.ShouldBe(0, rerun.Output);
        var request = hook.Requests.ShouldHaveSingleItem();
        request.Headers["X-QwenBatch-Signature"].ShouldBe("sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(Secret), request.Body)));
        var summary = JsonDocument.Parse(request.Body).RootElement;
        summary.GetProperty("name").GetString().ShouldBe("products");
        summary.GetProperty("counts").GetProperty("succeeded").GetInt32().ShouldBe(4);
        run.Output.ShouldNotContain(Secret);
    }

    [Fact]
    public async Task Cancel_OfASubmittedBatchWithNoWorker_FiresItsContinuationOnce()
    {
        using var hook = new LoopbackHook();
        var submit = await CliProcess.RunAsync(_workspace.Root, Signing,
            "submit", "samples/products.csv", "--name", "first", "--then-manifest", "samples/products.csv", "--then-webhook", hook.Url);

        var cancel = await CliProcess.RunAsync(_workspace.Root, Signing, "cancel", "first");
        var again = await CliProcess.RunAsync(_workspace.Root, Signing, "cancel", "first");
        var status = await CliProcess.RunAsync(_workspace.Root, null, "status", "first-then", "--json");

        submit.ExitCode.ShouldBe(0, submit.Output);
        cancel.ExitCode.ShouldBe(0, cancel.Output);
        cancel.Stdout.ShouldContain("Continuation: batch first-then; webhook 200");
        again.ExitCode.ShouldBe(0, again.Output);
        again.Stdout.ShouldNotContain("Continuation:");
        hook.Requests.ShouldHaveSingleItem().Headers["X-QwenBatch-Delivery"].ShouldStartWith("batch-");
        status.ExitCode.ShouldBe(0, status.Output);
        JsonDocument.Parse(status.Stdout).RootElement.GetProperty("total").GetInt32().ShouldBe(4);
    }

    [Fact]
    public async Task ScheduleTrigger_InvalidManifest_Exits2AndLeavesAFailedBatchWithTheErrorsInStatusAndErrorsCsv()
    {
        var manifest = Path.Combine(_workspace.Root, "nightly.csv");
        await File.WriteAllTextAsync(manifest, "id,prompt,images\nmug,,samples/images/mug.png\n");
        await CliProcess.RunAsync(_workspace.Root, null, "schedule", "add", "nightly", "--cron", "0 2 * * *", "--tz", "Europe/Berlin", "--manifest", "nightly.csv");

        var trigger = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "trigger", "nightly");
        var list = await CliProcess.RunAsync(_workspace.Root, null, "status", "--json");

        trigger.ExitCode.ShouldBe(2, trigger.Output);
        trigger.Stderr.ShouldContain("failed batch 'nightly-");
        var batch = JsonDocument.Parse(list.Stdout).RootElement.GetProperty("batches").EnumerateArray().ShouldHaveSingleItem();
        batch.GetProperty("state").GetString().ShouldBe("failed");
        batch.GetProperty("total").GetInt32().ShouldBe(0);
        var error = batch.GetProperty("error").GetString()!;
        error.ShouldContain("nightly.csv:2");
        error.ShouldContain("prompt");
        var errorsCsv = await File.ReadAllTextAsync(Path.Combine(_workspace.BatchDir(batch.GetProperty("name").GetString()!), "errors.csv"));
        errorsCsv.ShouldContain("nightly.csv:2");
        var one = await CliProcess.RunAsync(_workspace.Root, null, "status", batch.GetProperty("name").GetString()!);
        one.Stdout.ShouldContain("failed");
        one.Stdout.ShouldContain("prompt");
    }
}

using System.Text.Json;
using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>schedule add, list, pause, trigger and remove as separate processes over one store.</summary>
public sealed class ScheduleCommandTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task ScheduleAddListPauseList_Json_ShowsNextRunInUtcUntilPaused()
    {
        var add = await CliProcess.RunAsync(_workspace.Root, null,
            "schedule", "add", "nightly", "--cron", "0 2 * * *", "--tz", "Europe/Berlin", "--manifest", "samples/products.csv");
        var list = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "list", "--json");
        var pause = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "pause", "nightly");
        var paused = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "list", "--json");

        add.ExitCode.ShouldBe(0, add.Output);
        list.ExitCode.ShouldBe(0, list.Output);
        var row = JsonDocument.Parse(list.Stdout).RootElement.EnumerateArray().ShouldHaveSingleItem();
        row.GetProperty("name").GetString().ShouldBe("nightly");
        row.GetProperty("cron").GetString().ShouldBe("0 2 * * *");
        row.GetProperty("tz").GetString().ShouldBe("Europe/Berlin");
        row.GetProperty("paused").GetBoolean().ShouldBeFalse();
        row.GetProperty("last_run").ValueKind.ShouldBe(JsonValueKind.Null);

        // 02:00 in Berlin is 00:00 or 01:00 UTC, depending on daylight saving (Hangfire computes it with Cronos in the zone).
        var next = row.GetProperty("next").GetString()!;
        next.ShouldMatch(@"^\d{4}-\d{2}-\d{2}T0[01]:00:00Z$");

        // A paused schedule has no recurring job in Hangfire, so no next run.
        pause.ExitCode.ShouldBe(0, pause.Output);
        paused.ExitCode.ShouldBe(0, paused.Output);
        var pausedRow = JsonDocument.Parse(paused.Stdout).RootElement.EnumerateArray().ShouldHaveSingleItem();
        pausedRow.GetProperty("paused").GetBoolean().ShouldBeTrue();
        pausedRow.GetProperty("next").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task ScheduleTriggerThenRemove_ExistingSchedule_EnqueuesBatchNamedByMinuteAndRemoves()
    {
        await CliProcess.RunAsync(_workspace.Root, null, "schedule", "add", "touchups", "--cron", "30 6 * * 1-5", "--manifest", "samples/products.csv");

        var trigger = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "trigger", "touchups");
        var list = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "list", "--json");
        var remove = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "remove", "touchups");
        var again = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "remove", "touchups");

        trigger.ExitCode.ShouldBe(0, trigger.Output);
        trigger.Stdout.ShouldMatch(@"batch 'touchups-\d{8}-\d{4}' enqueued");
        JsonDocument.Parse(list.Stdout).RootElement[0].GetProperty("last_batch").GetString()!.ShouldStartWith("touchups-");
        remove.ExitCode.ShouldBe(0, remove.Output);
        again.ExitCode.ShouldBe(1, again.Output);
        again.Stderr.ShouldContain("No schedule named 'touchups'");
    }

    [Fact]
    public async Task ScheduleAdd_InvalidCronOrZone_Exits1WithMessage()
    {
        var cron = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "add", "bad", "--cron", "0 2 * *", "--manifest", "samples/products.csv");
        var zone = await CliProcess.RunAsync(_workspace.Root, null, "schedule", "add", "bad", "--cron", "0 2 * * *", "--tz", "Mars/Base", "--manifest", "samples/products.csv");

        cron.ExitCode.ShouldBe(1, cron.Output);
        cron.Stderr.ShouldContain("--cron '0 2 * *' is not a 5-field cron expression");
        zone.ExitCode.ShouldBe(1, zone.Output);
        zone.Stderr.ShouldContain("--tz 'Mars/Base' is not a known time zone");
    }
}

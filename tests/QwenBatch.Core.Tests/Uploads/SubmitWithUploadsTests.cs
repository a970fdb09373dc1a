using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Core.Tests.Steps;
using QwenBatch.Edits;
using QwenBatch.FlowControl;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Steps;

namespace QwenBatch.Core.Tests.Uploads;

/// <summary>The submit step for WaveSpeed: local images go up first, and an image that cannot fails only the edits that need it.</summary>
public sealed class SubmitWithUploadsTests
{
    [Fact]
    public async Task RunAsync_OneEditsImageCannotBeUploaded_ThatEditFailsNamingTheFileAndTheOtherIsSubmittedByUrl()
    {
        await using var rig = await UploadRig.StartAsync();
        var good = rig.Image("banner.png");
        var oversized = new byte[(20 * 1024 * 1024) + 1];
        (await File.ReadAllBytesAsync(good)).CopyTo(oversized, 0);
        var bad = rig.Image("poster.png", oversized);
        var edits = new MemoryEdits(rig.Scope.Time);
        var changer = new EditStateChanger(edits, NullLogger<EditStateChanger>.Instance);
        var options = new WorkerOptions();
        var submit = new SubmitStep(changer, rig.Providers, rig.Requests, new PollSchedule(options, () => 0.5), new LatencyModel(), new LatencyScouts(options, rig.Scope.Time),
            new UnwrittenMoves(changer, rig.Scope.Time, NullLogger<UnwrittenMoves>.Instance),
            new StepFailures(changer, options, rig.Scope.Time, () => 0.5, NullLogger<StepFailures>.Instance), rig.Scope.Time, NullLogger<SubmitStep>.Instance);

        var failed = await submit.RunAsync(edits.Add(Queued(1, bad, rig.Scope.Time.GetUtcNow())), "server-a", CancellationToken.None);
        var submitted = await submit.RunAsync(edits.Add(Queued(2, good, rig.Scope.Time.GetUtcNow())), "server-a", CancellationToken.None);

        failed.ShouldBeOfType<StepOutcome.Failed>().Reason.ShouldContain($"Input image '{bad}'");
        edits[1].State.ShouldBe(EditState.Failed);
        edits[1].Error.ShouldNotBeNull().ShouldContain(bad);
        edits[1].Error!.ShouldNotContain(UploadRig.Key);
        submitted.ShouldBeOfType<StepOutcome.AtProvider>();
        edits[2].State.ShouldBe(EditState.AtProvider);
        var stats = rig.Simulator.GetStats();
        (stats.Uploads, stats.Submits).ShouldBe((1, 1));
    }

    private static EditRecord Queued(long id, string image, DateTimeOffset now) => new()
    {
        Id = id,
        BatchId = 1,
        Key = $"e{id}",
        ContentHash = "h",
        State = EditState.Queued,
        Provider = ProviderNames.WaveSpeed,
        Spec = new EditSpec { Prompt = $"prompt {id}", Images = [image], Size = "1024*512" },
        DueAt = now,
        CreatedAt = now,
        ReservedUsd = 0.02m,
    };
}

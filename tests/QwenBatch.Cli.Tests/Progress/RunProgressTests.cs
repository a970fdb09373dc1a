using QwenBatch.Batches;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Progress;
using QwenBatch.Edits;

namespace QwenBatch.Cli.Tests.Progress;

public sealed class RunProgressTests
{
    [Fact]
    public void Line_MidRun_ShowsDoneInFlightFailedHeldSpendAndEta()
    {
        var progress = new BatchProgress(1, new Dictionary<EditState, int>
        {
            [EditState.Succeeded] = 5, [EditState.Failed] = 1, [EditState.Held] = 2, [EditState.AtProvider] = 3, [EditState.Pending] = 9,
        }, 0.1m);

        RunProgress.Line(progress, TimeSpan.FromSeconds(95)).ShouldBe("8/20 done, 3 in flight, 1 failed, 2 held, spent $0.10, ETA 1m35s");
    }

    [Theory]
    [InlineData(10, 30, 20.0, 60.0)]
    [InlineData(0, 30, 20.0, null)]
    [InlineData(10, 0, 20.0, 0.0)]
    public void Estimate_FromThePaceSoFar_ScalesToTheJobsLeft(int finished, int remaining, double elapsedSeconds, double? expectedSeconds)
    {
        var eta = BatchEta.Estimate(finished, remaining, TimeSpan.FromSeconds(elapsedSeconds));

        (eta?.TotalSeconds).ShouldBe(expectedSeconds);
    }
}

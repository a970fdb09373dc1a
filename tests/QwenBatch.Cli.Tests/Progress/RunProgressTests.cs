using QwenBatch.Batches;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Progress;
using QwenBatch.Edits;
using Spectre.Console;

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

    private static BatchProgress MidRun() => new(1, new Dictionary<EditState, int>
    {
        [EditState.Succeeded] = 5, [EditState.Failed] = 1, [EditState.Held] = 2, [EditState.AtProvider] = 3, [EditState.Pending] = 9,
    }, 0.1m);

    [Fact]
    public void FrameMarkup_WideTerminal_ShowsTheBarAndEveryCount()
    {
        var frame = RunProgress.FrameMarkup(MidRun(), "1m35s", 120);

        Markup.Remove(frame).ShouldBe("━━━━━━────────── 8/20 · 3 in flight · 1 failed · 2 held · $0.10 · ETA 1m35s");
    }

    [Fact]
    public void FrameMarkup_WithoutEta_LeavesTheEtaOut()
    {
        var frame = RunProgress.FrameMarkup(MidRun(), eta: null, 120);

        Markup.Remove(frame).ShouldBe("━━━━━━────────── 8/20 · 3 in flight · 1 failed · 2 held · $0.10");
    }

    [Theory]
    [InlineData(80, "━━━━━━────────── 8/20 · 3 in flight · 1 failed · 2 held · $0.10 · ETA 1m35s")]
    [InlineData(70, "━━━━────── 8/20 · 3 in flight · 1 failed · 2 held · $0.10 · ETA 1m35s")]
    [InlineData(62, "8/20 · 3 in flight · 1 failed · 2 held · $0.10 · ETA 1m35s")]
    [InlineData(40, "8/20 · 3 in flight · 1 failed · 2 held…")]
    public void FrameMarkup_NarrowTerminal_FitsInOneRowLessItsLastColumn(int width, string expected)
    {
        var frame = Markup.Remove(RunProgress.FrameMarkup(MidRun(), "1m35s", width));

        frame.ShouldBe(expected);
        frame.Length.ShouldBeLessThan(width);
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

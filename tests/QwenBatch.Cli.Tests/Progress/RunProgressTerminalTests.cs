using System.Globalization;
using System.Text.RegularExpressions;
using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Progress;

/// <summary>
/// <c>run</c> in a real terminal, read from the screen as a person reads it: log events print above the live bar and never
/// into it, the last frame shows the counts the run ended with, and the one summary line follows it with nothing stale.
/// </summary>
public sealed partial class RunProgressTerminalTests : IDisposable
{
    private const int Jobs = 60;
    private const int Height = 20;
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Theory]
    [InlineData(120)]
    [InlineData(80)]
    public async Task Run_InATerminalWhileLogging_ShowsTheBarUnderTheLogAndEndsWithTheFinalBarThenOneSummary(int width)
    {
        var manifest = TestManifests.OneImageJobs(_workspace, "big", Jobs);

        // --verbose: the engine logs many events a second while the bar is on screen.
        await using var terminal = await TerminalSession.StartAsync(_workspace.Root, width, Height, Slower("00:00:00.500", "00:00:01"),
            "run", manifest, "--provider", "simulator", "--verbose");

        var midRun = await terminal.WaitForScreenAsync(screen => Done(Bottom(screen)) is > 0 and < Jobs);
        BarRows(midRun).Count.ShouldBe(1, Show(midRun));
        midRun.ShouldContain(row => LogRow().IsMatch(row), Show(midRun));

        var exit = await terminal.WaitForExitAsync();
        var end = await terminal.ScreenAsync();
        exit.ShouldBe(0, Show(end));
        var bar = AssertFinalBarThenOneSummary(end);
        Done(end[bar]).ShouldBe(Jobs, Show(end));
        end[bar + 1].StartsWith($"Batch 'big': {Jobs} succeeded, 0 failed, 0 cancelled, 0 unfinished of {Jobs};", StringComparison.Ordinal).ShouldBeTrue(Show(end));
    }

    [Fact]
    public async Task Run_CtrlCInATerminal_LastFrameShowsWhereItStoppedThenOneSummary()
    {
        var manifest = TestManifests.OneImageJobs(_workspace, "big", Jobs);
        await using var terminal = await TerminalSession.StartAsync(_workspace.Root, 120, Height, Slower("00:00:02", "00:00:03"),
            "run", manifest, "--provider", "simulator");

        await terminal.WaitForScreenAsync(screen => Done(Bottom(screen)) is > 0 and < Jobs);
        await terminal.SendKeysAsync("C-c");

        var exit = await terminal.WaitForExitAsync();
        var end = await terminal.ScreenAsync();
        exit.ShouldBe(130, Show(end));
        var bar = AssertFinalBarThenOneSummary(end);
        end.Take(bar).ShouldContain(row => row.StartsWith("Stopping: finishing steps in flight", StringComparison.Ordinal), Show(end));

        // The frame and the summary tell the same story: every job the bar counts as done is in the summary, the rest unfinished.
        var summary = Summary().Match(end[bar + 1]);
        summary.Success.ShouldBeTrue(Show(end));
        var settled = Number(summary, "succeeded") + Number(summary, "failed") + Number(summary, "cancelled");
        Done(end[bar]).ShouldBe(settled, Show(end));
        settled.ShouldBeLessThan(Jobs, Show(end));
        Number(summary, "unfinished").ShouldBe(Jobs - settled, Show(end));
        end.Skip(bar + 1).ShouldContain(row => row.StartsWith("Interrupted; state is kept.", StringComparison.Ordinal), Show(end));
    }

    /// <summary>
    /// The last screen has exactly one bar row, a whole frame with nothing else in it, and the row right under it starts
    /// the run's one summary line. Returns the bar's row.
    /// </summary>
    private static int AssertFinalBarThenOneSummary(IReadOnlyList<string> screen)
    {
        var bars = BarRows(screen);
        bars.Count.ShouldBe(1, Show(screen));
        var bar = bars[0];
        Frame().IsMatch(screen[bar]).ShouldBeTrue($"the bar row holds a frame and nothing else:\n{Show(screen)}");
        screen[bar].Contains("ETA", StringComparison.Ordinal).ShouldBeFalse($"the last frame has no ETA:\n{Show(screen)}");
        (bar + 1).ShouldBeLessThan(screen.Count, Show(screen));
        Summary().IsMatch(screen[bar + 1]).ShouldBeTrue($"the summary is the row under the last frame:\n{Show(screen)}");
        screen.Count(row => Summary().IsMatch(row)).ShouldBe(1, Show(screen));
        return bar;
    }

    /// <summary>Rows that hold any part of a progress frame.</summary>
    private static List<int> BarRows(IReadOnlyList<string> screen) =>
        [.. screen.Select((row, i) => (row, i)).Where(r => r.row.Contains(" in flight · ", StringComparison.Ordinal)).Select(r => r.i)];

    /// <summary>The done count of a row that is exactly one progress frame, else null.</summary>
    private static int? Done(string row) =>
        Frame().Match(row) is { Success: true } frame ? int.Parse(frame.Groups["done"].Value, CultureInfo.InvariantCulture) : null;

    private static string Bottom(IReadOnlyList<string> screen) => screen.Count > 0 ? screen[^1] : "";

    private static int Number(Match summary, string group) => int.Parse(summary.Groups[group].Value, CultureInfo.InvariantCulture);

    private static string Show(IReadOnlyList<string> screen) => "screen:\n" + string.Join('\n', screen);

    private static Dictionary<string, string> Slower(string min, string max) => new()
    {
        ["Simulator__LatencyMin"] = min,
        ["Simulator__LatencyMax"] = max,
    };

    [GeneratedRegex(@"^(?:[━─]{4,16} )?(?<done>\d+)/60 · \d+ in flight · \d+ failed(?: · \d+ held)? · \$\d+\.\d\d(?: · ETA \S+)?$")]
    private static partial Regex Frame();

    [GeneratedRegex(@"^Batch 'big': (?<succeeded>\d+) succeeded, (?<failed>\d+) failed, (?<cancelled>\d+) cancelled, (?<unfinished>\d+) unfinished of 60;")]
    private static partial Regex Summary();

    [GeneratedRegex(@"^\[\d\d:\d\d:\d\d (?:DBG|INF|WRN)\] ")]
    private static partial Regex LogRow();
}

using System.Globalization;
using QwenBatch.Batches;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Edits;
using QwenBatch.Storage;
using Spectre.Console;

namespace QwenBatch.Cli.Progress;

/// <summary>
/// The progress of a <c>run</c> on stderr (stdout keeps the summary for scripts): a live Spectre line redrawn in place on
/// a terminal, or a plain line whenever it changes when stderr is a pipe, CI or a log file. The ETA is this run's own
/// pace, so a resumed batch's earlier work does not make it look fast.
/// </summary>
internal sealed class RunProgress(IBatchStore store, long batchId, TimeProvider time)
{
    private static readonly TimeSpan LiveInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LineInterval = TimeSpan.FromSeconds(2);
    private readonly long _started = time.GetTimestamp();
    private int? _finishedAtStart;

    public Task RunAsync(CancellationToken ct) =>
        Terminal.Error.Profile.Capabilities.Interactive ? LiveAsync(ct) : LinesAsync(ct);

    /// <summary>One plain progress line: done/total, in flight, failed, held, spend, ETA.</summary>
    public static string Line(BatchProgress p, TimeSpan? eta)
    {
        var done = p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);
        var inFlight = p.InFlight;
        var held = p.Count(EditState.Held) > 0 ? $", {p.Count(EditState.Held)} held" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{done}/{p.Total} done, {inFlight} in flight, {p.Count(EditState.Failed)} failed{held}, spent ${p.SpentUsd:0.00}, ETA {BatchEta.Format(eta)}");
    }

    private async Task<(BatchProgress Progress, TimeSpan? Eta)> SampleAsync(CancellationToken ct)
    {
        var p = await store.GetProgressAsync(batchId, ct);
        var finished = p.Counts.Where(c => c.Key.IsTerminal()).Sum(c => c.Value);
        _finishedAtStart ??= finished;
        var remaining = p.Counts.Where(c => !c.Key.IsSettled()).Sum(c => c.Value);
        return (p, BatchEta.Estimate(finished - _finishedAtStart.Value, remaining, time.GetElapsedTime(_started)));
    }

    private async Task LinesAsync(CancellationToken ct)
    {
        var last = "";
        try
        {
            await SampleAsync(ct);
            while (true)
            {
                await Task.Delay(LineInterval, time, ct);
                var (p, eta) = await SampleAsync(ct);
                var line = Line(p, eta);

                // The ETA moves every sample; print when the counts or spend move.
                var counts = line[..line.LastIndexOf(", ETA", StringComparison.Ordinal)];
                if (counts != last)
                {
                    await Console.Error.WriteLineAsync(line);
                    last = counts;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task LiveAsync(CancellationToken ct)
    {
        try
        {
            var (first, firstEta) = await SampleAsync(ct);
            await Terminal.Error.Live(Render(first, firstEta)).AutoClear(false).StartAsync(async live =>
            {
                try
                {
                    while (true)
                    {
                        await Task.Delay(LiveInterval, time, ct);
                        var (p, eta) = await SampleAsync(ct);
                        live.UpdateTarget(Render(p, eta));
                        live.Refresh();
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static Markup Render(BatchProgress p, TimeSpan? eta)
    {
        var done = p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);
        var inFlight = p.InFlight;
        var percent = p.Total == 0 ? 100 : done * 100 / p.Total;
        const int Width = 16;
        var filled = percent * Width / 100;
        var bar = new string('━', filled) + new string('─', Width - filled);
        var failed = p.Count(EditState.Failed) > 0 ? $"[red]{p.Count(EditState.Failed)} failed[/]" : "0 failed";
        var held = p.Count(EditState.Held) > 0 ? $" · [yellow]{p.Count(EditState.Held)} held[/]" : "";
        return new Markup(string.Create(CultureInfo.InvariantCulture,
            $"[green]{bar}[/] [bold]{done}/{p.Total}[/] · {inFlight} in flight · {failed}{held} · ${p.SpentUsd:0.00} · ETA {BatchEta.Format(eta)}"));
    }
}

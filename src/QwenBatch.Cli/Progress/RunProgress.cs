using System.Globalization;
using QwenBatch.Batches;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Edits;
using QwenBatch.Storage;
using Spectre.Console;

namespace QwenBatch.Cli.Progress;

/// <summary>
/// The progress of a <c>run</c> on stderr (stdout keeps the summary for scripts): a <see cref="LiveLine"/> redrawn in place
/// on a terminal, with log events printed above it, or a plain line whenever it changes when stderr is a pipe, CI or a
/// log file. The ETA is this run's own pace, so a resumed batch's earlier work does not make it look fast.
/// </summary>
internal sealed class RunProgress : IAsyncDisposable
{
    private const int BarWidth = 16;
    private static readonly TimeSpan LiveInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LineInterval = TimeSpan.FromSeconds(2);
    private readonly IBatchStore _store;
    private readonly long _batchId;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly CancellationTokenSource _stopping = new();
    private int? _finishedAtStart;
    private LiveLine? _live;
    private Task _sampling = Task.CompletedTask;

    private RunProgress(IBatchStore store, long batchId, TimeProvider time)
    {
        _store = store;
        _batchId = batchId;
        _time = time;
        _started = time.GetTimestamp();
    }

    /// <summary>Shows the batch's progress from now until <see cref="CompleteAsync"/> or disposal.</summary>
    public static async Task<RunProgress> StartAsync(IBatchStore store, long batchId, TimeProvider time)
    {
        var progress = new RunProgress(store, batchId, time);
        var (first, eta) = await progress.SampleAsync(CancellationToken.None);
        if (Terminal.Error.Profile.Capabilities is { Interactive: true, Ansi: true })
        {
            progress._live = LiveLine.Show(Terminal.Error, width => Frame(first, BatchEta.Format(eta), width));
            progress._sampling = progress.LiveAsync(progress._stopping.Token);
        }
        else
        {
            progress._sampling = progress.LinesAsync(progress._stopping.Token);
        }

        return progress;
    }

    /// <summary>
    /// Stops sampling and prints the run's <paramref name="summary"/> on stdout. On a terminal the last frame shows
    /// <paramref name="final"/>, the counts the summary states, without an ETA, and the summary is the row right below it.
    /// </summary>
    public async Task CompleteAsync(BatchProgress final, string summary)
    {
        await StopSamplingAsync();
        if (_live is null)
        {
            await Console.Out.WriteLineAsync(summary);
            return;
        }

        _live.End(width => Frame(final, eta: null, width), summary);
    }

    /// <summary>Stops sampling and leaves the live line as it stands (a run that ended in an error).</summary>
    public async ValueTask DisposeAsync()
    {
        await StopSamplingAsync();
        _live?.End();
        _stopping.Dispose();
    }

    /// <summary>One plain progress line: done/total, in flight, failed, held, spend, ETA.</summary>
    public static string Line(BatchProgress p, TimeSpan? eta)
    {
        var done = p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);
        var inFlight = p.InFlight;
        var held = p.Count(EditState.Held) > 0 ? $", {p.Count(EditState.Held)} held" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{done}/{p.Total} done, {inFlight} in flight, {p.Count(EditState.Failed)} failed{held}, spent ${p.SpentUsd:0.00}, ETA {BatchEta.Format(eta)}");
    }

    /// <summary>
    /// One frame of the live line, as markup that fits in <paramref name="width"/> columns less one: a frame that wrapped
    /// could not be redrawn in place. A narrow terminal gets a shorter bar, then no bar, then the counts cut short.
    /// </summary>
    public static string FrameMarkup(BatchProgress p, string? eta, int width)
    {
        var done = p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);
        var failed = p.Count(EditState.Failed);
        var held = p.Count(EditState.Held);
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{done}/{p.Total} · {p.InFlight} in flight · {failed} failed{(held > 0 ? $" · {held} held" : "")} · ${p.SpentUsd:0.00}{(eta is null ? "" : $" · ETA {eta}")}");
        var room = width - 1;
        if (text.Length > room)
        {
            return Markup.Escape(room > 1 ? text[..(room - 1)] + "…" : "");
        }

        var barWidth = Math.Min(BarWidth, room - text.Length - 1);
        var bar = "";
        if (barWidth >= 4)
        {
            var filled = p.Total == 0 ? barWidth : done * barWidth / p.Total;
            bar = $"[green]{new string('━', filled)}{new string('─', barWidth - filled)}[/] ";
        }

        return bar + string.Create(CultureInfo.InvariantCulture,
            $"[bold]{done}/{p.Total}[/] · {p.InFlight} in flight · {(failed > 0 ? $"[red]{failed} failed[/]" : "0 failed")}"
            + $"{(held > 0 ? $" · [yellow]{held} held[/]" : "")} · ${p.SpentUsd:0.00}{(eta is null ? "" : $" · ETA {Markup.Escape(eta)}")}");
    }

    private static Markup Frame(BatchProgress p, string? eta, int width) => new(FrameMarkup(p, eta, width));

    private async Task StopSamplingAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync();
        }

        await _sampling;
    }

    private async Task<(BatchProgress Progress, TimeSpan? Eta)> SampleAsync(CancellationToken ct)
    {
        var p = await _store.GetProgressAsync(_batchId, ct);
        var finished = p.Counts.Where(c => c.Key.IsTerminal()).Sum(c => c.Value);
        _finishedAtStart ??= finished;
        var remaining = p.Counts.Where(c => !c.Key.IsSettled()).Sum(c => c.Value);
        return (p, BatchEta.Estimate(finished - _finishedAtStart.Value, remaining, _time.GetElapsedTime(_started)));
    }

    private async Task LinesAsync(CancellationToken ct)
    {
        var last = "";
        try
        {
            while (true)
            {
                await Task.Delay(LineInterval, _time, ct);
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
            while (true)
            {
                await Task.Delay(LiveInterval, _time, ct);
                var (p, eta) = await SampleAsync(ct);
                _live!.Update(width => Frame(p, BatchEta.Format(eta), width));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}

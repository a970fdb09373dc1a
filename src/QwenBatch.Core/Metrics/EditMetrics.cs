using System.Diagnostics.Metrics;
using QwenBatch.Edits;

namespace QwenBatch.Metrics;

/// <summary>
/// What this process's moves of edits tell an operator, as <see cref="System.Diagnostics.Metrics"/> instruments of the
/// <see cref="MeterName"/> meter: submits the provider accepted, edits succeeded and failed, the provider's time per task
/// and the money spent, each by provider. Every move goes through the one owner of edit state, which reports it here, so
/// a fleet's counters add up across its processes.
/// </summary>
public sealed class EditMetrics : IEditMoves
{
    public const string MeterName = "QwenBatch";

    private readonly Counter<long> _submitted;
    private readonly Counter<long> _succeeded;
    private readonly Counter<long> _failed;
    private readonly Histogram<double> _latency;
    private readonly Counter<double> _spend;

    public EditMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _submitted = meter.CreateCounter<long>("qwenbatch.edits.submitted", description: "Submits the provider accepted (one per task it runs)");
        _succeeded = meter.CreateCounter<long>("qwenbatch.edits.succeeded", description: "Edits whose outputs were all written");
        _failed = meter.CreateCounter<long>("qwenbatch.edits.failed", description: "Edits that ended failed");
        _latency = meter.CreateHistogram("qwenbatch.provider.latency", unit: "s", description: "From the accepted submit to the provider's finish, per succeeded edit",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600] });
        _spend = meter.CreateCounter<double>("qwenbatch.spend.usd", description: "US dollars the provider charged for finished edits");
    }

    public void Moved(EditState from, EditRecord edit)
    {
        var provider = new KeyValuePair<string, object?>("provider", edit.Provider);
        if (edit.State == EditState.AtProvider && from == EditState.Submitting)
        {
            _submitted.Add(1, provider);
        }

        if (from == edit.State || !edit.State.IsTerminal())
        {
            return;
        }

        if (edit.State == EditState.Succeeded)
        {
            _succeeded.Add(1, provider);
            if (edit.FinishedAt - edit.SubmittedAt is { } latency)
            {
                _latency.Record(latency.TotalSeconds, provider);
            }
        }
        else if (edit.State == EditState.Failed)
        {
            _failed.Add(1, provider);
        }

        if (edit.CostUsd > 0)
        {
            _spend.Add((double)edit.CostUsd, provider);
        }
    }

    public void Settled(long batchId)
    {
    }
}

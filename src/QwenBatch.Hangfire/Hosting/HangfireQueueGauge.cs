using System.Diagnostics.Metrics;
using Hangfire;
using QwenBatch.Metrics;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// The length of QwenBatch's Hangfire queue (edits' jobs enqueued and not yet fetched by a worker), read from Hangfire's
/// storage when a collector observes it.
/// </summary>
public sealed class HangfireQueueGauge
{
    public HangfireQueueGauge(IMeterFactory meters, JobStorage storage, HangfireOptions options)
    {
        var meter = meters.Create(EditMetrics.MeterName);
        var queue = new KeyValuePair<string, object?>("queue", options.Queue);
        meter.CreateObservableGauge("qwenbatch.hangfire.queue_length", () => new Measurement<long>(storage.GetMonitoringApi().EnqueuedCount(options.Queue), queue),
            description: "Jobs waiting in QwenBatch's Hangfire queue");
    }
}

using System.Diagnostics.Metrics;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Metrics;

/// <summary>
/// The fleet's edits in flight and its backlog, by provider, read from the store's counters when a collector observes
/// them (a scrape), never counted from the edits. Any process of the fleet reports the same values.
/// </summary>
public sealed class BacklogGauges
{
    public BacklogGauges(IMeterFactory meters, IReportReads reads, IBatchStore batches)
    {
        var meter = meters.Create(EditMetrics.MeterName);
        meter.CreateObservableGauge("qwenbatch.edits.in_flight", () => Read(reads, batches, InFlight),
            description: "Edits queued, being submitted, at the provider or being downloaded");
        meter.CreateObservableGauge("qwenbatch.edits.backlog", () => Read(reads, batches, [EditState.Pending]),
            description: "Edits waiting for the feeder (pending)");
    }

    private static readonly EditState[] InFlight = [EditState.Queued, EditState.Submitting, EditState.AtProvider, EditState.Downloading];

    private static IEnumerable<Measurement<long>> Read(IReportReads reads, IBatchStore batches, IReadOnlyCollection<EditState> states)
    {
        // Observable instruments are read synchronously by the collector; the store's reads are two small counter queries.
        var providers = batches.GetBatchesAsync(CancellationToken.None).GetAwaiter().GetResult().ToDictionary(b => b.Id, b => b.Provider);
        var counts = reads.GetStateCountsAsync(CancellationToken.None).GetAwaiter().GetResult();
        var byProvider = counts.Where(c => states.Contains(c.State) && providers.ContainsKey(c.BatchId))
            .GroupBy(c => providers[c.BatchId]).ToDictionary(g => g.Key, g => g.Sum(c => c.Count));
        return providers.Values.Distinct().Select(p => new Measurement<long>(byProvider.GetValueOrDefault(p), new KeyValuePair<string, object?>("provider", p)));
    }
}

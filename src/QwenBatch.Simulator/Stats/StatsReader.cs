using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Stats;

/// <summary>Builds <see cref="SimulatorStats"/> at read time from the counters, the task board and the clock.</summary>
internal sealed class StatsReader(CallCounters counters, TaskBoard board, WaveSpeed.UploadShelf uploads, SimulatorOptions options)
{
    public SimulatorStats Read()
    {
        var (chargedImages, maxConcurrent) = board.Measure();
        return new SimulatorStats(
            Submits: counters.Submits,
            StatusCalls: counters.StatusCalls,
            ResultCalls: counters.ResultCalls,
            Cancels: counters.Cancels,
            RateLimited: counters.RateLimited,
            MaxConcurrent: maxConcurrent,
            ChargedImages: chargedImages,
            ChargedUsd: chargedImages * options.PricePerImage,
            Uploads: uploads.Uploads,
            Webhooks: counters.Webhooks,
            WebhooksDelivered: counters.WebhooksDelivered,
            WebhooksFailed: counters.WebhooksFailed,
            WebhooksDropped: counters.WebhooksDropped,
            Faults: counters.Faults(),
            Keys: counters.Keys());
    }
}

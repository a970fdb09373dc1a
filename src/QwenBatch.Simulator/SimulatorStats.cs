namespace QwenBatch.Simulator;

/// <summary>Counters of one simulator instance; serialized snake_case by <c>GET /_sim/stats</c>.</summary>
/// <param name="Submits">Accepted tasks.</param>
/// <param name="StatusCalls">Authorized status calls.</param>
/// <param name="ResultCalls">Authorized response (result) calls.</param>
/// <param name="Cancels">Authorized cancel calls.</param>
/// <param name="RateLimited">429 answers sent (the simulator has no rate limit yet, so 0).</param>
/// <param name="MaxConcurrent">Highest number of tasks IN_PROGRESS at the same time so far.</param>
/// <param name="ChargedImages">Images of completed tasks (failed and cancelled tasks are free).</param>
/// <param name="ChargedUsd">ChargedImages × price per image.</param>
internal sealed record SimulatorStats(
    long Submits,
    long StatusCalls,
    long ResultCalls,
    long Cancels,
    long RateLimited,
    int MaxConcurrent,
    long ChargedImages,
    decimal ChargedUsd);

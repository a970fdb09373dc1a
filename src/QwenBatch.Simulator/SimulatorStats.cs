namespace QwenBatch.Simulator;

/// <summary>Counters of one simulator instance; serialized snake_case by <c>GET /_sim/stats</c>.</summary>
/// <param name="Submits">Accepted tasks.</param>
/// <param name="StatusCalls">Authorized status calls.</param>
/// <param name="ResultCalls">Authorized response (result) calls.</param>
/// <param name="Cancels">Authorized cancel calls.</param>
/// <param name="RateLimited">429 answers sent (rate limit and rejected over-concurrency submits).</param>
/// <param name="MaxConcurrent">Highest number of tasks IN_PROGRESS at the same time so far.</param>
/// <param name="ChargedImages">Images of completed tasks (failed and cancelled tasks are free).</param>
/// <param name="ChargedUsd">ChargedImages × price per image.</param>
/// <param name="Uploads">Files stored by the WaveSpeed media upload (the documented binary upload and the SDK's ticket and PUT).</param>
/// <param name="Webhooks">WaveSpeed webhook POSTs attempted: first attempts, retries and duplicates.</param>
/// <param name="WebhooksDelivered">Attempts the receiver answered 2xx.</param>
/// <param name="WebhooksFailed">Attempts answered otherwise, refused or timed out (an attempt cut by the simulator's stop is neither).</param>
/// <param name="WebhooksDropped">Webhook events never sent (injected fault); a cancelled task's webhook is not one.</param>
/// <param name="Faults">
/// Injected faults by kind (slow, dropped, server_error, malformed_json, truncated; webhook_duplicated and
/// webhook_bad_signature per event).
/// </param>
/// <param name="Keys">Per API key fingerprint (never the key): requests, accepted submits, 429s.</param>
internal sealed record SimulatorStats(
    long Submits,
    long StatusCalls,
    long ResultCalls,
    long Cancels,
    long RateLimited,
    int MaxConcurrent,
    long ChargedImages,
    decimal ChargedUsd,
    long Uploads = 0,
    long Webhooks = 0,
    long WebhooksDelivered = 0,
    long WebhooksFailed = 0,
    long WebhooksDropped = 0,
    IReadOnlyDictionary<string, long>? Faults = null,
    IReadOnlyDictionary<string, Stats.KeyStats>? Keys = null);

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Continuations;

/// <summary>
/// Fires the continuations of settled batches, whoever ended them: the next manifest becomes batch <c>&lt;batch&gt;-then</c>
/// (a failed batch with the errors when it is missing or invalid), and the webhook gets the batch summary as a signed JSON
/// POST, retried with backoff. The store's guarded, leased claim makes each continuation fire once, whichever process sees
/// the batch settle first: the claimer hands it to a Hangfire job, which fires it (<see cref="FireAsync(long, CancellationToken)"/>).
/// </summary>
public sealed partial class ContinuationRunner
{
    public const string SignatureHeader = "X-QwenBatch-Signature";

    /// <summary>The same for every attempt and every firing of one batch's webhook, so a receiver can drop a repeat.</summary>
    public const string DeliveryHeader = "X-QwenBatch-Delivery";
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly IStore _store;
    private readonly ContinuationOptions _options;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly ILogger<ContinuationRunner> _logger;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;

    public ContinuationRunner(IStore store, ContinuationOptions options, HttpClient http, TimeProvider time, ILogger<ContinuationRunner> logger)
    {
        (_store, _options, _http, _time, _logger) = (store, options, http, time, logger);
        _retry = options.WebhookAttempts <= 1
            ? ResiliencePipeline<HttpResponseMessage>.Empty
            : new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
                .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
                {
                    MaxRetryAttempts = options.WebhookAttempts - 1,
                    Delay = options.WebhookRetryDelay,
                    BackoffType = DelayBackoffType.Exponential,
                    ShouldHandle = new PredicateBuilder<HttpResponseMessage>().Handle<HttpRequestException>().HandleResult(r => !r.IsSuccessStatusCode),
                })
                .Build();
    }

    /// <summary>
    /// Claims the continuations of settled batches (of one batch when given) that nobody fired yet, each for this caller
    /// alone until its lease ends; the caller hands each to a Hangfire job.
    /// </summary>
    public Task<IReadOnlyList<ClaimedContinuation>> ClaimSettledAsync(long? batchId, CancellationToken ct) =>
        _store.ClaimContinuationsAsync(new ContinuationClaim(batchId is null ? 10 : 1, _options.ClaimLease, batchId), ct);

    /// <summary>
    /// Fires a claimed batch's continuation and records the result; a second run of its job finds the result recorded and
    /// returns it without firing again. Null when the batch has no continuation.
    /// </summary>
    public async Task<string?> FireAsync(long batchId, CancellationToken ct)
    {
        if (await _store.GetContinuationAsync(batchId, ct) is not { Then.IsEmpty: false } continuation || await _store.GetBatchAsync(batchId, ct) is not { } batch)
        {
            return null;
        }

        if (continuation.Result is { } recorded)
        {
            return recorded;
        }

        return await FireAsync(new ClaimedContinuation(batch.Id, batch.Name, batch.Provider, batch.StorageDir, continuation.Then), ct);
    }

    private async Task<string> FireAsync(ClaimedContinuation claimed, CancellationToken ct)
    {
        // Until the result is recorded the claim is open: if this process dies first, another worker fires it again after
        // the lease. The next manifest's batch name is fixed (a second import resumes it) and the webhook carries a delivery
        // id, so a second firing is recognisable.
        var parts = new List<string>();
        if (claimed.Then.Manifest is { } manifest)
        {
            parts.Add(await RunManifestAsync(claimed, manifest, ct));
        }

        if (claimed.Then.Webhook is { } webhook)
        {
            parts.Add(await PostAsync(claimed, webhook, ct));
        }

        var result = string.Join("; ", parts);

        // Fired: record the result even when stopping, or it would fire again.
        await _store.RecordContinuationAsync(claimed.BatchId, result, CancellationToken.None);
        if (result.Contains("failed", StringComparison.Ordinal))
        {
            LogFiredWithFailure(claimed.BatchName, result);
        }
        else
        {
            LogFired(claimed.BatchName, result);
        }
        return result;
    }

    /// <summary>The webhook body's signature: HMAC-SHA256 of the exact bytes sent, hex.</summary>
    public static string Sign(string secret, byte[] body) => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    private async Task<string> RunManifestAsync(ClaimedContinuation claimed, string manifest, CancellationToken ct)
    {
        var root = Path.GetDirectoryName(claimed.StorageDir) ?? claimed.StorageDir;
        var batch = BatchPlanner.Batch(Path.GetFullPath(manifest), null, claimed.Provider, root, $"{claimed.BatchName}-then");
        var result = await UnattendedImport.ImportAsync(_store, manifest, batch, _time, ct);
        return result.Error is null ? $"batch {result.Batch.Name}" : $"manifest failed (batch {result.Batch.Name}): {result.Error}";
    }

    private async Task<string> PostAsync(ClaimedContinuation claimed, string webhook, CancellationToken ct)
    {
        var progress = await _store.GetProgressAsync(claimed.BatchId, ct);
        var summary = new WebhookSummary(claimed.BatchId.ToString(System.Globalization.CultureInfo.InvariantCulture), claimed.BatchName, progress.Total,
            progress.Counts.ToDictionary(c => c.Key.ToDbName(), c => c.Value), progress.SpentUsd, _time.GetUtcNow());
        var body = JsonSerializer.SerializeToUtf8Bytes(summary, Json);
        try
        {
            using var response = await _retry.ExecuteAsync(async token =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, webhook) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                request.Headers.Add(DeliveryHeader, $"batch-{claimed.BatchId.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
                if (_options.WebhookSecret is { Length: > 0 } secret)
                {
                    request.Headers.Add(SignatureHeader, Sign(secret, body));
                }

                return await _http.SendAsync(request, token);
            }, ct);
            return response.IsSuccessStatusCode
                ? $"webhook {(int)response.StatusCode}"
                : $"webhook failed: HTTP {(int)response.StatusCode} after {_options.WebhookAttempts} attempt(s)";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return $"webhook failed: {ex.Message}";
        }
    }

    private sealed record WebhookSummary(string Batch, string Name, int Jobs, Dictionary<string, int> Counts, decimal SpentUsd, DateTimeOffset SettledAt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Continuation of batch {Batch} fired: {Result}")]
    private partial void LogFired(string batch, string result);

    [LoggerMessage(Level = LogLevel.Error, Message = "Continuation of batch {Batch} fired and failed: {Result}")]
    private partial void LogFiredWithFailure(string batch, string result);

}

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using QwenBatch.Batches;
using QwenBatch.Jobs;
using QwenBatch.Manifests;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Continuations;

/// <summary>
/// Fires the continuations of settled batches: the next manifest becomes batch <c>&lt;batch&gt;-then</c> through the one
/// import path, and the webhook gets the batch summary as a signed JSON POST, retried with backoff. The store's guarded
/// claim makes each continuation fire once, whichever worker sees the batch settle first.
/// </summary>
public sealed partial class ContinuationRunner : IServerLoop
{
    public const string SignatureHeader = "X-QwenBatch-Signature";
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly IJobStore _store;
    private readonly ContinuationOptions _options;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly ILogger<ContinuationRunner> _logger;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;

    public ContinuationRunner(IJobStore store, ContinuationOptions options, HttpClient http, TimeProvider time, ILogger<ContinuationRunner> logger)
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

    public async Task RunAsync(string serverId, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await TickAsync(ct);
                await Task.Delay(_options.PollInterval, _time, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogTickFailed(ex);
                try
                {
                    await Task.Delay(_options.PollInterval, _time, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Claims and fires every settled batch's continuation; returns the results recorded.</summary>
    public async Task<IReadOnlyList<string>> TickAsync(CancellationToken ct)
    {
        var results = new List<string>();
        foreach (var claimed in await _store.ClaimContinuationsAsync(10, ct))
        {
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

            // Claimed means fired: record the result even when stopping, or nobody would know what happened.
            await _store.RecordContinuationAsync(claimed.BatchId, result, CancellationToken.None);
            LogFired(claimed.BatchName, result);
            results.Add(result);
        }

        return results;
    }

    /// <summary>The webhook body's signature: HMAC-SHA256 of the exact bytes sent, hex.</summary>
    public static string Sign(string secret, byte[] body) => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    private async Task<string> RunManifestAsync(ClaimedContinuation claimed, string manifest, CancellationToken ct)
    {
        try
        {
            if (!File.Exists(manifest))
            {
                return $"manifest failed: '{manifest}' does not exist";
            }

            var options = new ManifestOptions { Provider = claimed.Provider };
            var check = ManifestImporter.Check(manifest, options);
            if (check.Diagnostics.ErrorCount > 0)
            {
                return $"manifest failed: {check.Diagnostics.ErrorCount} error(s), nothing enqueued";
            }

            var root = Path.GetDirectoryName(claimed.StorageDir) ?? claimed.StorageDir;
            var batch = BatchPlanner.Batch(check.Path, check.Name, claimed.Provider, root, $"{claimed.BatchName}-then");
            var import = await _store.ImportBatchAsync(batch, ManifestImporter.ValidJobs(manifest, options, claimed.Provider, skipInvalid: false, ct), ct);
            return $"batch {import.Batch.Name}";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return $"manifest failed: {ex.Message}";
        }
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
                if (_options.WebhookSecret is { Length: > 0 } secret)
                {
                    request.Headers.Add(SignatureHeader, Sign(secret, body));
                }

                return await _http.SendAsync(request, token);
            }, ct);
            return $"webhook {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return $"webhook failed: {ex.Message}";
        }
    }

    private sealed record WebhookSummary(string Batch, string Name, int Jobs, Dictionary<string, int> Counts, decimal SpentUsd, DateTimeOffset SettledAt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Continuation of batch {Batch} fired: {Result}")]
    private partial void LogFired(string batch, string result);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Looking for settled batches' continuations failed; trying again at the next interval")]
    private partial void LogTickFailed(Exception ex);
}

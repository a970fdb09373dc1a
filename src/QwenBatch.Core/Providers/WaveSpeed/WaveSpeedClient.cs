using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Uploads;

namespace QwenBatch.Providers.WaveSpeed;

/// <summary>
/// The WaveSpeed API: POST /api/v3/wavespeed-ai/qwen-image/edit-plus, then GET /api/v3/predictions/{id}/result, every
/// answer wrapped as <c>{code, message, data}</c>. Bearer auth. There is no documented cancel endpoint. Local input
/// images go up first through the media upload (POST /api/v3/media/upload/binary, multipart field <c>file</c>), whose
/// <c>data.download_url</c> a submit names: the model's page documents URLs for <c>images</c>, not data URIs.
/// </summary>
public sealed partial class WaveSpeedClient(HttpClient http, ProviderOptions options, ILogger<WaveSpeedClient> logger) : IImageEditProvider, IInputUploader
{
    public const string ModelPath = "api/v3/wavespeed-ai/qwen-image/edit-plus";
    public const string PredictionsPath = "api/v3/predictions";
    public const string UploadPath = "api/v3/media/upload/binary";
    public const string WebhookSecretPath = "api/v3/webhook/secret";

    /// <summary>WaveSpeed's documented limit for an uploaded image.</summary>
    public long MaxUploadBytes => 20L * 1024 * 1024;

    public async Task<string> UploadAsync(LocalImage image, CancellationToken ct)
    {
        var file = new ByteArrayContent(image.Bytes);
        file.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(image.MimeType);
        using var form = new MultipartFormDataContent { { file, "file", Path.GetFileName(image.Path) } };
        using var message = ProviderHttp.Request(HttpMethod.Post, Url(UploadPath), options, form);
        message.Options.Set(ProviderHttp.Repeatable, true);
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: true, ct);
        using (json)
        {
            var data = Unwrap(message, status, json, retryAfter, idempotent: true);
            return data.Str("download_url") is { } url && Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)
                ? url
                : throw new ProviderException(ProviderErrorKind.NotAccepted, $"POST /{UploadPath}: answer without an http(s) data.download_url", (int)status);
        }
    }

    public async Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct)
    {
        var limits = ProviderLimits.WaveSpeed;
        var problems = limits.Check(request);
        if (problems.Count > 0)
        {
            throw new ProviderException(ProviderErrorKind.Rejected, string.Join("; ", problems));
        }

        // With webhooks on, WaveSpeed posts the finished prediction to the fleet's receiver; the poller is then the fallback.
        var target = options.Webhook is { } webhook ? new Uri($"{Url(ModelPath)}?webhook={Uri.EscapeDataString(webhook.Url.AbsoluteUri)}") : Url(ModelPath);
        using var message = ProviderHttp.Request(HttpMethod.Post, target, options, JsonContent.Create(WaveSpeedWire.SubmitBody(request, options.Base64Output)));
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: false, ct);
        using (json)
        {
            var data = Unwrap(message, status, json, retryAfter, idempotent: false);
            var id = data.Str("id");
            if (string.IsNullOrEmpty(id))
            {
                // Accepted by status code but no id to follow: the task may exist and we cannot track it.
                throw new ProviderException(ProviderErrorKind.Uncertain, "submit answered without data.id", (int)status);
            }

            return new SubmitAccepted(id, null);
        }
    }

    public async Task<PollResult> PollAsync(string requestId, CancellationToken ct)
    {
        using var message = ProviderHttp.Request(HttpMethod.Get, Url($"{PredictionsPath}/{Uri.EscapeDataString(requestId)}/result"), options);
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: true, ct);
        using (json)
        {
            var result = WaveSpeedWire.Result(Unwrap(message, status, json, retryAfter, idempotent: true));
            if (result.Status == PollStatus.Unknown)
            {
                LogUnknownStatus(requestId, result.RawStatus ?? "(none)");
            }

            return result;
        }
    }

    /// <summary>
    /// The account's webhook secret (GET /api/v3/webhook/secret), as the API gives it, <c>whsec_</c> prefix included. The
    /// docs show the call, not its answer: <c>data.secret</c> is read, or <c>data</c> itself when it is a string.
    /// </summary>
    public async Task<string> GetWebhookSecretAsync(CancellationToken ct)
    {
        using var message = ProviderHttp.Request(HttpMethod.Get, Url(WebhookSecretPath), options);
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: true, ct);
        using (json)
        {
            if (status == HttpStatusCode.OK && json?.RootElement is { ValueKind: JsonValueKind.Object } root
                && root.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.String && data.GetString() is { Length: > 0 } plain)
            {
                return plain;
            }

            return Unwrap(message, status, json, retryAfter, idempotent: true).Str("secret") is { Length: > 0 } secret
                ? secret
                : throw new ProviderException(ProviderErrorKind.NotAccepted, $"GET /{WebhookSecretPath}: answer without data.secret", (int)status);
        }
    }

    /// <summary>WaveSpeed documents no cancel endpoint: the engine stops tracking and reports that the provider may still charge.</summary>
    public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct) => Task.FromResult(CancelOutcome.Unsupported);

    /// <summary>
    /// The <c>data</c> object of a successful answer. The wrapper's <c>code</c> can disagree with the HTTP status (an
    /// error wrapped in a 200), so a non-200 code counts as that HTTP status.
    /// </summary>
    private static JsonElement Unwrap(HttpRequestMessage message, HttpStatusCode status, JsonDocument? json, TimeSpan? retryAfter, bool idempotent)
    {
        var root = json?.RootElement ?? default;
        var code = root.Int("code") is { } c and >= 100 and <= 599 ? (HttpStatusCode)c : status;
        if (status != HttpStatusCode.OK)
        {
            throw ProviderHttp.Failure(message, status, json, retryAfter, idempotent);
        }

        if (code != HttpStatusCode.OK)
        {
            throw ProviderHttp.Failure(message, code, json, retryAfter, idempotent);
        }

        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object)
        {
            throw new ProviderException(idempotent ? ProviderErrorKind.NotAccepted : ProviderErrorKind.Uncertain,
                $"{message.Method} {message.RequestUri?.AbsolutePath}: answer without a data object", (int)status);
        }

        return data.Clone();
    }

    private Uri Url(string relative)
    {
        var baseUrl = options.BaseUrl ?? throw new InvalidOperationException("Providers:WaveSpeed:BaseUrl is not configured.");
        return new Uri(baseUrl.AbsoluteUri.TrimEnd('/') + "/" + relative);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "WaveSpeed prediction {RequestId} answered an unknown status {Status}; polling again later")]
    private partial void LogUnknownStatus(string requestId, string status);
}

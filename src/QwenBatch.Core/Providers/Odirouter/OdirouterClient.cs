using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;

namespace QwenBatch.Providers.Odirouter;

/// <summary>
/// The odirouter queue API (fal-style): POST /v1/queue/qwen_image_edit_plus, then GET …/requests/{id}/status,
/// GET …/requests/{id}/response and PUT …/requests/{id}/cancel, with Bearer auth.
/// </summary>
public sealed partial class OdirouterClient(HttpClient http, ProviderOptions options, ILogger<OdirouterClient> logger) : IImageEditProvider
{
    public const string QueuePath = "v1/queue/qwen_image_edit_plus";

    public async Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct)
    {
        var body = new Dictionary<string, object?>
        {
            ["prompt"] = request.Prompt,
            ["images"] = request.Images,
        };
        if (request.NegativePrompt is not null)
        {
            body["negative_prompt"] = request.NegativePrompt;
        }

        if (request.Size is not null)
        {
            body["size"] = request.Size;
        }

        if (request.N != 1)
        {
            body["n"] = request.N;
        }

        if (request.Seed is { } seed)
        {
            body["seed"] = seed;
        }

        if (request.PromptExtend is { } extend)
        {
            body["prompt_extend"] = extend;
        }

        if (request.Watermark is { } watermark)
        {
            body["watermark"] = watermark;
        }

        using var message = ProviderHttp.Request(HttpMethod.Post, Url(QueuePath), options, JsonContent.Create(body));
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: false, ct);
        using (json)
        {
            if (status != HttpStatusCode.OK && status != HttpStatusCode.Accepted && status != HttpStatusCode.Created)
            {
                throw ProviderHttp.Failure(message, status, json, retryAfter, idempotent: false);
            }

            var requestId = json?.RootElement.Str("request_id");
            if (string.IsNullOrEmpty(requestId))
            {
                // Accepted by status code but no id to follow: the task may exist and we cannot track it.
                throw new ProviderException(ProviderErrorKind.Uncertain, "submit answered without a request_id", (int)status);
            }

            return new SubmitAccepted(requestId, json!.RootElement.Int("queue_position"));
        }
    }

    public async Task<PollResult> PollAsync(string requestId, CancellationToken ct)
    {
        using var message = ProviderHttp.Request(HttpMethod.Get, Url($"{QueuePath}/requests/{Uri.EscapeDataString(requestId)}/status"), options);
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: true, ct);
        using (json)
        {
            if (status != HttpStatusCode.OK && status != HttpStatusCode.Accepted)
            {
                throw ProviderHttp.Failure(message, status, json, retryAfter, idempotent: true);
            }

            var root = json?.RootElement ?? default;
            var state = root.Str("status");
            switch (state)
            {
                case "IN_QUEUE":
                    return PollResult.Queued(root.Int("queue_position"));
                case "IN_PROGRESS":
                    return PollResult.Running;
                case "COMPLETED":
                    return await FetchResponseAsync(requestId, ct);
                case "FAILED":
                case "ERROR":
                    return new PollResult(PollStatus.Failed, Error: root.Str("error") ?? root.Str("detail") ?? "the provider reported the task failed");
                case "CANCELED":
                case "CANCELLED":
                    return new PollResult(PollStatus.Cancelled);
                default:
                    LogUnknownStatus(requestId, state ?? "(none)");
                    return new PollResult(PollStatus.Unknown, RawStatus: state);
            }
        }
    }

    public async Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct)
    {
        using var message = ProviderHttp.Request(HttpMethod.Put, Url($"{QueuePath}/requests/{Uri.EscapeDataString(requestId)}/cancel"), options);
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: true, ct);
        using (json)
        {
            var answer = json?.RootElement.Str("status");
            if (status == HttpStatusCode.NotFound || answer == "NOT_FOUND")
            {
                return CancelOutcome.NotFound;
            }

            if (status is not (HttpStatusCode.OK or HttpStatusCode.Accepted))
            {
                throw ProviderHttp.Failure(message, status, json, retryAfter, idempotent: true);
            }

            return answer == "ALREADY_COMPLETED" ? CancelOutcome.AlreadyCompleted : CancelOutcome.Requested;
        }
    }

    private async Task<PollResult> FetchResponseAsync(string requestId, CancellationToken ct)
    {
        using var message = ProviderHttp.Request(HttpMethod.Get, Url($"{QueuePath}/requests/{Uri.EscapeDataString(requestId)}/response"), options);
        var (status, json, retryAfter) = await ProviderHttp.SendAsync(http, message, idempotent: true, ct);
        using (json)
        {
            if (status != HttpStatusCode.OK)
            {
                throw ProviderHttp.Failure(message, status, json, retryAfter, idempotent: true);
            }

            var outputs = new List<ProviderOutput>();
            var root = json?.RootElement ?? default;
            if (root.ValueKind == JsonValueKind.Object
                && (root.TryGetProperty("images", out var images) || root.TryGetProperty("outputs", out images))
                && images.ValueKind == JsonValueKind.Array)
            {
                foreach (var image in images.EnumerateArray())
                {
                    if (image.ValueKind == JsonValueKind.String)
                    {
                        outputs.Add(ToOutput(image.GetString()!, null));
                    }
                    else if (image.Str("url") is { } url)
                    {
                        outputs.Add(ToOutput(url, image.Str("content_type")));
                    }
                }
            }

            return outputs.Count == 0
                ? new PollResult(PollStatus.Failed, Error: "the provider reported completion without any output image")
                : new PollResult(PollStatus.Completed, Outputs: outputs);
        }
    }

    private static ProviderOutput ToOutput(string value, string? contentType) =>
        value.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
            ? new ProviderOutput(value, null, contentType)
            : new ProviderOutput(null, value, contentType);

    private Uri Url(string relative)
    {
        var baseUrl = options.BaseUrl ?? throw new InvalidOperationException("Providers:Odirouter:BaseUrl is not configured.");
        return new Uri(baseUrl.AbsoluteUri.TrimEnd('/') + "/" + relative);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Request {RequestId} answered an unknown status {Status}; polling again later")]
    private partial void LogUnknownStatus(string requestId, string status);
}

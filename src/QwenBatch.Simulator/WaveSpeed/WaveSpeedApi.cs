using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Logging;
using QwenBatch.Simulator.Faults;
using QwenBatch.Simulator.Images;
using QwenBatch.Simulator.Odirouter;
using QwenBatch.Simulator.Stats;
using QwenBatch.Simulator.Tasks;
using QwenBatch.Simulator.Webhooks;

namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>Handlers of the WaveSpeed API for wavespeed-ai/qwen-image/edit-plus, shaped like the real one.</summary>
internal sealed class WaveSpeedApi(
    TaskBoard board,
    CallCounters counters,
    ApiGate gate,
    UploadShelf uploads,
    WebhookDispatcher webhooks,
    SimulatorOptions options,
    TimeProvider time,
    ILogger<WaveSpeedApi> logger)
{
    public const string Model = "wavespeed-ai/qwen-image/edit-plus";
    public const string SubmitPath = "/api/v3/" + Model;
    public const string ResultPath = "/api/v3/predictions/{requestId}/result";
    private const int MaxBodyBytes = 64 * 1024 * 1024;

    public async Task<IResult> SubmitAsync(HttpContext context)
    {
        if (await EnterAsync(context) is { } stopped)
            return stopped;

        JsonDocument document;
        try
        {
            if (context.Request.ContentLength > MaxBodyBytes)
                return Error(400, $"body: at most {MaxBodyBytes / (1024 * 1024)} MB was expected");
            document = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted);
        }
        catch (JsonException)
        {
            return Error(400, "body: a JSON object was expected");
        }

        using (document)
        {
            if (!WaveSpeedValidator.TryValidate(document.RootElement, out var spec, out var syncMode, out var error))
            {
                logger.SubmitRejected(error);
                return Error(400, error);
            }

            if (UnknownUpload(context, document.RootElement) is { } unknown)
            {
                logger.SubmitRejected(unknown);
                return Error(400, unknown);
            }

            if (!WebhookTarget.TryParse(context.Request.Query[WebhookTarget.QueryName], out var webhook, out var webhookError))
            {
                logger.SubmitRejected(webhookError);
                return Error(400, webhookError);
            }

            if (options.RejectOverConcurrency && board.Active() >= options.MaxConcurrent)
            {
                counters.CountRateLimited(BearerKey.Fingerprint(context));
                context.Response.Headers.RetryAfter = "1";
                return Error(429, $"Too many concurrent tasks: at most {options.MaxConcurrent} at once");
            }

            var ticket = board.Submit(spec);
            counters.CountSubmit(BearerKey.Fingerprint(context));
            var requestId = RequestIdCodec.Encode(ticket);
            var position = board.Observe(ticket).QueuePosition;
            logger.TaskAccepted(requestId, spec.Count, spec.Width, spec.Height, position);
            if (webhook is not null)
            {
                var origin = FileEndpoints.Origin(context.Request);
                var input = document.RootElement.Clone();
                webhooks.Schedule(new WebhookOrder(ticket, requestId, webhook, () => JsonSerializer.SerializeToUtf8Bytes(
                    Prediction(origin, requestId, ticket, input), SimulatorJsonContext.Default.WaveSpeedPrediction)));
            }

            if (syncMode)
            {
                // enable_sync_mode: answer once the task has finished, as the real API does.
                var wait = DateTimeOffset.FromUnixTimeMilliseconds(ticket.DoneMs) - time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait, time, context.RequestAborted);
            }

            return Envelope(context, requestId, ticket);
        }
    }

    public async Task<IResult> ResultAsync(HttpContext context, string requestId)
    {
        if (await EnterAsync(context) is { } stopped)
            return stopped;
        counters.CountResultCall();
        if (!RequestIdCodec.TryDecode(requestId, out var ticket))
            return Error(404, "Prediction not found");
        return Envelope(context, requestId, ticket);
    }

    /// <summary>
    /// An input image that names an upload of this simulator must be one it stores: the real API cannot fetch a file it
    /// deleted after 7 days, or one never uploaded.
    /// </summary>
    private string? UnknownUpload(HttpContext context, JsonElement body)
    {
        var index = 0;
        foreach (var image in body.GetProperty("images").EnumerateArray())
        {
            if (uploads.IsOwnUrl(image.GetString()!, context.Request.Host.Value ?? "", out var stored) && !stored)
                return $"images[{index}]: the uploaded file is unknown or expired (uploads are kept {UploadShelf.KeptFor.TotalDays:0} days)";
            index++;
        }

        return null;
    }

    /// <summary>Auth, the per-key rate limit and the injected faults, as every authorized API request meets them.</summary>
    internal async Task<IResult?> EnterAsync(HttpContext context)
    {
        var key = BearerKey.Fingerprint(context);
        if (key is null)
        {
            logger.Unauthorized(context.Request.Method, context.Request.Path.Value ?? "");
            context.Response.Headers.WWWAuthenticate = "Bearer";
            return Error(401, "Unauthorized: send 'Authorization: Bearer <api key>'");
        }

        return await gate.EnterAsync(context, key) switch
        {
            GateVerdict.RateLimited => Error(429, "Rate limit exceeded, please retry later"),
            GateVerdict.ServerError => Error(503, "Service temporarily unavailable"),
            GateVerdict.Malformed => ApiGate.Malformed(),
            GateVerdict.Dropped => ApiGate.Nothing(),
            _ => null,
        };
    }

    private JsonHttpResult<WaveSpeedEnvelope> Envelope(HttpContext context, string requestId, SimTicket ticket) =>
        TypedResults.Json(
            new WaveSpeedEnvelope(200, "success", Prediction(FileEndpoints.Origin(context.Request), requestId, ticket, input: null)),
            SimulatorJsonContext.Default.WaveSpeedEnvelope);

    /// <summary>The task as of now, with URLs at <paramref name="origin"/>; <paramref name="input"/> only in a webhook's body.</summary>
    private WaveSpeedPrediction Prediction(string origin, string requestId, SimTicket ticket, JsonElement? input)
    {
        var view = board.Observe(ticket);
        var status = view.State switch
        {
            SimTaskState.InQueue => "created",
            SimTaskState.InProgress => "processing",
            SimTaskState.Completed => "completed",
            _ => "failed",
        };
        var outputs = new List<string>();
        if (view.State == SimTaskState.Completed)
        {
            for (var k = 0; k < ticket.Count; k++)
                outputs.Add(ticket.Base64 ? DataUri(ticket, k) : FileEndpoints.FileUrl(origin, requestId, k, ticket.Format));
        }

        return new WaveSpeedPrediction(
            requestId,
            Model,
            input,
            outputs,
            new WaveSpeedUrls($"{origin}/api/v3/predictions/{requestId}/result"),
            outputs.Select(_ => false).ToList(),
            status,
            DateTimeOffset.FromUnixTimeMilliseconds(ticket.StartMs).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            view.State == SimTaskState.Failed ? OdirouterApi.FailureReason : "",
            new WaveSpeedTimings(view.State == SimTaskState.Completed ? ticket.DoneMs - ticket.StartMs : 0));
    }

    private static string DataUri(SimTicket ticket, int index)
    {
        using var buffer = new MemoryStream();
        ticket.Format.WriteAsync(buffer, ticket.Seed, index, ticket.Width, ticket.Height, CancellationToken.None).GetAwaiter().GetResult();
        return $"data:{ticket.Format.ContentType()};base64,{Convert.ToBase64String(buffer.GetBuffer(), 0, (int)buffer.Length)}";
    }

    internal static JsonHttpResult<WaveSpeedEnvelope> Error(int code, string message) =>
        TypedResults.Json(new WaveSpeedEnvelope(code, message, null), SimulatorJsonContext.Default.WaveSpeedEnvelope, statusCode: code);
}

using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Logging;
using QwenBatch.Simulator.Faults;
using QwenBatch.Simulator.Images;
using QwenBatch.Simulator.Stats;
using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Odirouter;

/// <summary>Handlers of the odirouter queue API (qwen_image_edit_plus), shaped like the real one.</summary>
internal sealed class OdirouterApi(TaskBoard board, CallCounters counters, ApiGate gate, SimulatorOptions options, ILogger<OdirouterApi> logger)
{
    public const string QueuePath = "/v1/queue/qwen_image_edit_plus";
    public const string FailureReason = "Simulated inference failure";
    private const int MaxBodyBytes = 64 * 1024 * 1024;

    public async Task<IResult> SubmitAsync(HttpContext context, string prefix)
    {
        if (await EnterAsync(context) is { } refused)
            return refused;

        JsonDocument document;
        try
        {
            if (context.Request.ContentLength > MaxBodyBytes)
                return BadRequest($"body: at most {MaxBodyBytes / (1024 * 1024)} MB was expected");
            document = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted);
        }
        catch (JsonException)
        {
            return BadRequest("body: a JSON object was expected");
        }

        using (document)
        {
            if (!SubmitValidator.TryValidate(document.RootElement, out var spec, out var error))
                return BadRequest(error);

            if (options.RejectOverConcurrency && board.Active() >= options.MaxConcurrent)
            {
                counters.CountRateLimited(BearerKey.Fingerprint(context));
                context.Response.Headers.RetryAfter = "1";
                return TypedResults.Json(new DetailResponse($"Too many concurrent requests: at most {options.MaxConcurrent} at once"),
                    SimulatorJsonContext.Default.DetailResponse, statusCode: StatusCodes.Status429TooManyRequests);
            }

            var ticket = board.Submit(spec);
            counters.CountSubmit(BearerKey.Fingerprint(context));
            var requestId = RequestIdCodec.Encode(ticket);
            var view = board.Observe(ticket);
            logger.TaskAccepted(requestId, spec.Count, spec.Width, spec.Height, view.QueuePosition);

            var requestUrl = RequestUrl(context, prefix, requestId);
            return TypedResults.Json(
                new SubmitResponse(requestId, requestUrl + "/response", requestUrl + "/status", requestUrl + "/cancel", view.QueuePosition),
                SimulatorJsonContext.Default.SubmitResponse);
        }
    }

    public async Task<IResult> StatusAsync(HttpContext context, string requestId)
    {
        if (await EnterAsync(context) is { } refused)
            return refused;
        counters.CountStatusCall();
        if (!RequestIdCodec.TryDecode(requestId, out var ticket))
            return NotFound();

        var view = board.Observe(ticket);
        var body = new StatusResponse(
            requestId,
            view.State.ToWire(),
            view.State == SimTaskState.InQueue ? view.QueuePosition : null,
            view.State == SimTaskState.Failed ? FailureReason : null);
        return TypedResults.Json(body, SimulatorJsonContext.Default.StatusResponse);
    }

    public async Task<IResult> ResponseAsync(HttpContext context, string requestId)
    {
        if (await EnterAsync(context) is { } refused)
            return refused;
        counters.CountResultCall();
        if (!RequestIdCodec.TryDecode(requestId, out var ticket))
            return NotFound();

        var view = board.Observe(ticket);
        switch (view.State)
        {
            case SimTaskState.InQueue or SimTaskState.InProgress:
                return TypedResults.Json(new DetailResponse("Request is still in progress"), SimulatorJsonContext.Default.DetailResponse, statusCode: StatusCodes.Status409Conflict);
            case SimTaskState.Failed:
                return TypedResults.Json(new StatusDetailResponse("FAILED", FailureReason), SimulatorJsonContext.Default.StatusDetailResponse, statusCode: StatusCodes.Status422UnprocessableEntity);
            case SimTaskState.Canceled:
                return TypedResults.Json(new StatusDetailResponse("CANCELED", "Request was canceled"), SimulatorJsonContext.Default.StatusDetailResponse, statusCode: StatusCodes.Status409Conflict);
        }

        var images = new OutputImage[ticket.Count];
        for (var k = 0; k < images.Length; k++)
            images[k] = new OutputImage(FileEndpoints.FileUrl(context.Request, requestId, k), "image/png", ticket.Width, ticket.Height);
        var body = new ResultResponse(
            requestId,
            "COMPLETED",
            images,
            ticket.Seed,
            new bool[ticket.Count],
            new ResultTimings(ticket.DoneMs - ticket.StartMs));
        return TypedResults.Json(body, SimulatorJsonContext.Default.ResultResponse);
    }

    public async Task<IResult> CancelAsync(HttpContext context, string requestId)
    {
        if (await EnterAsync(context) is { } refused)
            return refused;
        counters.CountCancel();
        if (!RequestIdCodec.TryDecode(requestId, out var ticket))
            return TypedResults.Json(new CancelResponse("NOT_FOUND"), SimulatorJsonContext.Default.CancelResponse, statusCode: StatusCodes.Status404NotFound);

        if (board.Cancel(ticket) == CancelOutcome.AlreadyCompleted)
            return TypedResults.Json(new CancelResponse("ALREADY_COMPLETED"), SimulatorJsonContext.Default.CancelResponse);
        logger.TaskCanceled(requestId);
        return TypedResults.Json(new CancelResponse("CANCELLATION_REQUESTED"), SimulatorJsonContext.Default.CancelResponse);
    }

    private static string RequestUrl(HttpContext context, string prefix, string requestId)
    {
        var request = context.Request;
        return $"{request.Scheme}://{request.Host}{request.PathBase}{prefix}{QueuePath}/requests/{requestId}";
    }

    /// <summary>Auth first, then the rate limit and injected faults; null lets the handler run.</summary>
    private async Task<IResult?> EnterAsync(HttpContext context)
    {
        if (Unauthorized(context) is { } refused)
            return refused;
        return await gate.EnterAsync(context, BearerKey.Fingerprint(context)!) switch
        {
            GateVerdict.RateLimited => TypedResults.Json(new DetailResponse("Rate limit exceeded"), SimulatorJsonContext.Default.DetailResponse, statusCode: StatusCodes.Status429TooManyRequests),
            GateVerdict.ServerError => TypedResults.Json(new DetailResponse("Service temporarily unavailable"), SimulatorJsonContext.Default.DetailResponse, statusCode: StatusCodes.Status503ServiceUnavailable),
            GateVerdict.Malformed => ApiGate.Malformed(),
            GateVerdict.Dropped => ApiGate.Nothing(),
            _ => null,
        };
    }

    private JsonHttpResult<DetailResponse>? Unauthorized(HttpContext context)
    {
        if (BearerKey.Fingerprint(context) is not null)
            return null;

        logger.Unauthorized(context.Request.Method, context.Request.Path.Value ?? "");
        context.Response.Headers.WWWAuthenticate = "Bearer";
        return TypedResults.Json(
            new DetailResponse("Missing or invalid credentials: send 'Authorization: Bearer <api key>'"),
            SimulatorJsonContext.Default.DetailResponse,
            statusCode: StatusCodes.Status401Unauthorized);
    }

    private JsonHttpResult<DetailResponse> BadRequest(string detail)
    {
        logger.SubmitRejected(detail);
        return TypedResults.Json(new DetailResponse(detail), SimulatorJsonContext.Default.DetailResponse, statusCode: StatusCodes.Status400BadRequest);
    }

    private static JsonHttpResult<DetailResponse> NotFound() =>
        TypedResults.Json(new DetailResponse("Request not found"), SimulatorJsonContext.Default.DetailResponse, statusCode: StatusCodes.Status404NotFound);
}

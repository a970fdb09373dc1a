using Microsoft.AspNetCore.Http;
using QwenBatch.Simulator.Stats;

namespace QwenBatch.Simulator.Faults;

/// <summary>What the gate decided for one API request.</summary>
internal enum GateVerdict
{
    Proceed,
    RateLimited,
    ServerError,
    Dropped,
    Malformed,
}

/// <summary>
/// Runs before every authorized API request (not file downloads): the per-key rate limit, then the injected faults —
/// slow answer, dropped connection, 5xx, malformed JSON. A request stopped here never reaches the handler, so a submit
/// answered 5xx or garbled is not accepted.
/// </summary>
internal sealed class ApiGate(SimulatorOptions options, TimeProvider time, CallCounters counters, FaultDice dice)
{
    public const string MalformedBody = """{"code":200,"message":"success","data":{"id":""";
    private readonly RateWindow _rate = new(options.RateLimit, time);

    public async Task<GateVerdict> EnterAsync(HttpContext context, string key)
    {
        counters.CountRequest(key);
        if (_rate.TryEnter(key) is { } retryAfter)
        {
            counters.CountRateLimited(key);
            context.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return GateVerdict.RateLimited;
        }

        if (dice.Roll(options.SlowRate))
        {
            counters.CountFault("slow");
            await Task.Delay(options.SlowDelay, time, context.RequestAborted);
        }

        if (dice.Roll(options.DropRate))
        {
            counters.CountFault("dropped");
            context.Abort();
            return GateVerdict.Dropped;
        }

        if (dice.Roll(options.ErrorRate))
        {
            counters.CountFault("server_error");
            return GateVerdict.ServerError;
        }

        if (dice.Roll(options.MalformedRate))
        {
            counters.CountFault("malformed_json");
            return GateVerdict.Malformed;
        }

        return GateVerdict.Proceed;
    }

    /// <summary>A 200 whose JSON body stops half-way.</summary>
    public static IResult Malformed() => Results.Text(MalformedBody, "application/json", statusCode: StatusCodes.Status200OK);

    /// <summary>Nothing to write: the connection is already aborted.</summary>
    public static IResult Nothing() => Results.Empty;
}

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using QwenBatch.Simulator.Faults;
using QwenBatch.Simulator.Stats;
using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Images;

/// <summary>Serves output images like a CDN would: no auth, generated on demand, streamed.</summary>
internal static class FileEndpoints
{
    public const string FilesPath = "/_sim/files";

    public static string FileUrl(HttpRequest request, string requestId, int index, OutputFormat format = OutputFormat.Png) =>
        FileUrl(Origin(request), requestId, index, format);

    /// <param name="origin">Scheme, host and path base the client reached the simulator at (<see cref="Origin"/>).</param>
    public static string FileUrl(string origin, string requestId, int index, OutputFormat format) =>
        $"{origin}{FilesPath}/{requestId}/{index}.{format.Extension()}";

    /// <summary>Where the client reached the simulator, for URLs it answers: <c>http://host:port</c> and any path base.</summary>
    public static string Origin(HttpRequest request) => $"{request.Scheme}://{request.Host}{request.PathBase}";

    public static IEndpointRouteBuilder MapSimulatorFiles(this IEndpointRouteBuilder endpoints, TaskBoard board, CallCounters counters, FaultDice dice, SimulatorOptions options)
    {
        endpoints.MapGet(FilesPath + "/{requestId}/{index:int}.{extension}", async (HttpContext context, string requestId, int index, string extension) =>
        {
            if (!RequestIdCodec.TryDecode(requestId, out var ticket)
                || index < 0 || index >= ticket.Count
                || extension != ticket.Format.Extension()
                || board.Observe(ticket).State != SimTaskState.Completed)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            context.Response.ContentType = ticket.Format.ContentType();
            if (dice.Roll(options.TruncateRate))
            {
                // Announce the whole file, send half, cut the connection: a client must not keep the partial file.
                counters.CountFault("truncated");
                using var whole = new MemoryStream();
                await ticket.Format.WriteAsync(whole, ticket.Seed, index, ticket.Width, ticket.Height, context.RequestAborted, options.OutputPadding);
                context.Response.ContentLength = whole.Length;
                await context.Response.Body.WriteAsync(whole.GetBuffer().AsMemory(0, (int)(whole.Length / 2)), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                context.Abort();
                return;
            }

            await ticket.Format.WriteAsync(context.Response.Body, ticket.Seed, index, ticket.Width, ticket.Height, context.RequestAborted, options.OutputPadding);
        });
        return endpoints;
    }
}

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Images;

/// <summary>Serves output images like a CDN would: no auth, generated on demand, streamed.</summary>
internal static class FileEndpoints
{
    public const string FilesPath = "/_sim/files";

    public static string FileUrl(HttpRequest request, string requestId, int index) =>
        $"{request.Scheme}://{request.Host}{request.PathBase}{FilesPath}/{requestId}/{index}.png";

    public static IEndpointRouteBuilder MapSimulatorFiles(this IEndpointRouteBuilder endpoints, TaskBoard board)
    {
        endpoints.MapGet(FilesPath + "/{requestId}/{index:int}.png", async (HttpContext context, string requestId, int index) =>
        {
            if (!RequestIdCodec.TryDecode(requestId, out var ticket)
                || index < 0 || index >= ticket.Count
                || board.Observe(ticket).State != SimTaskState.Completed)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            context.Response.ContentType = "image/png";
            var pattern = new TestPattern(ticket.Seed, index, ticket.Width, ticket.Height);
            await PngEncoder.WriteRgbAsync(context.Response.Body, ticket.Width, ticket.Height, pattern.FillRow, context.RequestAborted);
        });
        return endpoints;
    }
}

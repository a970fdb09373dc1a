using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace QwenBatch.Simulator.WaveSpeed;

internal static class WaveSpeedEndpoints
{
    /// <summary>The real base URL is https://api.wavespeed.ai, so the paths start at the root.</summary>
    public static IEndpointRouteBuilder MapWaveSpeed(this IEndpointRouteBuilder endpoints, WaveSpeedApi api, WaveSpeedUploads uploads, WaveSpeedWebhookSecret secret)
    {
        endpoints.MapPost(WaveSpeedApi.SubmitPath, (Func<HttpContext, Task<IResult>>)api.SubmitAsync);
        endpoints.MapGet(WaveSpeedApi.ResultPath, (HttpContext context, string requestId) => api.ResultAsync(context, requestId));
        endpoints.MapPost(WaveSpeedUploads.BinaryPath, (Func<HttpContext, Task<IResult>>)uploads.UploadBinaryAsync);
        endpoints.MapPost(WaveSpeedUploads.TicketPath, (Func<HttpContext, Task<IResult>>)uploads.TicketAsync);
        endpoints.MapPut(UploadShelf.FilesPath + "/{id}/{name}", (HttpContext context, string id, string name) => uploads.PutAsync(context, id, name));
        endpoints.MapGet(UploadShelf.FilesPath + "/{id}/{name}", (string id, string name) => uploads.Download(id, name));
        endpoints.MapGet(WaveSpeedWebhookSecret.Path, (Func<HttpContext, Task<IResult>>)secret.GetAsync);
        return endpoints;
    }
}

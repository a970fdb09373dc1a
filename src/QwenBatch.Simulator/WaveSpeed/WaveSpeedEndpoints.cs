using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace QwenBatch.Simulator.WaveSpeed;

internal static class WaveSpeedEndpoints
{
    /// <summary>The real base URL is https://api.wavespeed.ai, so the paths start at the root.</summary>
    public static IEndpointRouteBuilder MapWaveSpeed(this IEndpointRouteBuilder endpoints, WaveSpeedApi api)
    {
        endpoints.MapPost(WaveSpeedApi.SubmitPath, (Func<HttpContext, Task<IResult>>)api.SubmitAsync);
        endpoints.MapGet(WaveSpeedApi.ResultPath, (HttpContext context, string requestId) => api.ResultAsync(context, requestId));
        return endpoints;
    }
}

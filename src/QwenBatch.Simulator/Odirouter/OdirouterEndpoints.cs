using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace QwenBatch.Simulator.Odirouter;

internal static class OdirouterEndpoints
{
    /// <summary>The real base URL is https://odirouter.ai/model, so the API answers at the root and under /model.</summary>
    public static readonly string[] Prefixes = ["", "/model"];

    public static IEndpointRouteBuilder MapOdirouter(this IEndpointRouteBuilder endpoints, OdirouterApi api)
    {
        foreach (var prefix in Prefixes)
        {
            var queue = prefix + OdirouterApi.QueuePath;
            var request = queue + "/requests/{requestId}";
            endpoints.MapPost(queue, (Func<HttpContext, Task<IResult>>)(context => api.SubmitAsync(context, prefix)));
            endpoints.MapGet(request + "/status", (HttpContext context, string requestId) => api.StatusAsync(context, requestId));
            endpoints.MapGet(request + "/response", (HttpContext context, string requestId) => api.ResponseAsync(context, requestId));
            endpoints.MapPut(request + "/cancel", (HttpContext context, string requestId) => api.CancelAsync(context, requestId));
        }
        return endpoints;
    }
}

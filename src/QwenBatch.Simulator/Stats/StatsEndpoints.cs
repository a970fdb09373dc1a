using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using QwenBatch.Simulator.Odirouter;

namespace QwenBatch.Simulator.Stats;

internal static class StatsEndpoints
{
    public const string StatsPath = "/_sim/stats";

    public static IEndpointRouteBuilder MapSimulatorStats(this IEndpointRouteBuilder endpoints, StatsReader stats)
    {
        endpoints.MapGet(StatsPath, () => TypedResults.Json(stats.Read(), SimulatorJsonContext.Default.SimulatorStats));
        return endpoints;
    }
}

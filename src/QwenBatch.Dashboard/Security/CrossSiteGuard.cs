using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace QwenBatch.Dashboard.Security;

/// <summary>
/// Cross-site request forgery defences for the API (the dashboard's buttons carry Hangfire's antiforgery token). API calls with a bearer token cannot be
/// forged by a browser; token-less API calls (allowed from loopback) must not come from another site: a browser names
/// the site in <c>Origin</c> / <c>Sec-Fetch-Site</c>, while curl and scripts send neither.
/// </summary>
internal static class CrossSiteGuard
{
    /// <summary>An endpoint filter for state-changing API calls: a token, or a same-origin (or non-browser) request.</summary>
    public static async ValueTask<object?> RequireTokenOrSameOrigin(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        var options = context.RequestServices.GetRequiredService<IOptions<DashboardOptions>>().Value;
        if (RequestGate.IsAuthorized(context, options, api: true) || IsSameOrigin(context.Request))
        {
            return await next(invocation);
        }

        return Results.Problem("Cross-site requests are refused; call the API with a bearer token (Dashboard:ApiToken) or from the same origin.",
            statusCode: StatusCodes.Status403Forbidden);
    }

    public static bool IsSameOrigin(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site is "cross-site" or "same-site")
        {
            return false;
        }

        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0)
        {
            return true;
        }

        return Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
            && string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase);
    }
}

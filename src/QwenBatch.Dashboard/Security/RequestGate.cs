using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace QwenBatch.Dashboard.Security;

/// <summary>
/// Who may talk to the dashboard: loopback requests always (Hangfire's default), remote ones only with the configured
/// credentials — a bearer token for <c>/api</c>, basic auth for the pages (and the API, which the batches page's upload
/// form calls, and <c>/metrics</c>), Hangfire's dashboard at <c>/hangfire</c>
/// included (it is mounted with no authorization filter of its own, so this gate is all that guards it). Everything else
/// gets 401 or 403.
/// </summary>
internal sealed class RequestGate(RequestDelegate next, IOptions<DashboardOptions> options)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path;
        var guarded = path.StartsWithSegments("/dashboard") || path.StartsWithSegments("/hangfire") || path.StartsWithSegments("/api")
            || path.StartsWithSegments(Metrics.MetricsEndpoint.Path);
        // The pages' credentials open the API too (the batches page uploads through it); its writes still refuse other sites.
        // A scraper may present the API token or the pages' credentials.
        var api = path.StartsWithSegments("/api") || path.StartsWithSegments(Metrics.MetricsEndpoint.Path);
        if (!guarded || IsLoopback(context) || IsAuthorized(context, options.Value, api) || (api && IsAuthorized(context, options.Value, api: false)))
        {
            await next(context);
            return;
        }

        var o = options.Value;
        if (!path.StartsWithSegments("/api") && o.User is { Length: > 0 } && o.Password is { Length: > 0 })
        {
            context.Response.Headers.WWWAuthenticate = "Basic realm=\"QwenBatch\", charset=\"UTF-8\"";
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        context.Response.StatusCode = path.StartsWithSegments("/api") && o.ApiToken is { Length: > 0 } ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden;
        await context.Response.WriteAsJsonAsync(new { error = "Only local requests are allowed unless Dashboard credentials are configured." });
    }

    /// <summary>True for a request from this machine. An unknown remote address (null) is not local.</summary>
    public static bool IsLoopback(HttpContext context) =>
        context.Connection.RemoteIpAddress is { } remote && IPAddress.IsLoopback(remote);

    /// <summary>True when the request carries the API token (for <c>/api</c>) or the basic-auth pair (for pages).</summary>
    public static bool IsAuthorized(HttpContext context, DashboardOptions o, bool api)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (api)
        {
            return o.ApiToken is { Length: > 0 } token && header.StartsWith("Bearer ", StringComparison.Ordinal) && FixedEquals(header[7..].Trim(), token);
        }

        if (o.User is not { Length: > 0 } user || o.Password is not { Length: > 0 } password || !header.StartsWith("Basic ", StringComparison.Ordinal))
        {
            return false;
        }

        try
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            return FixedEquals(pair, $"{user}:{password}");
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static bool FixedEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(a)), SHA256.HashData(Encoding.UTF8.GetBytes(b)));
}

using Microsoft.Extensions.Primitives;

namespace QwenBatch.Simulator.Webhooks;

/// <summary>
/// The <c>?webhook=</c> of a submit. WaveSpeed asks for a public HTTPS endpoint; the simulator takes http too, as its
/// receivers are on loopback.
/// </summary>
internal static class WebhookTarget
{
    public const string QueryName = "webhook";

    /// <summary>False with a field error when the parameter is there but is not one absolute http(s) URL; null target when absent.</summary>
    public static bool TryParse(StringValues values, out Uri? target, out string error)
    {
        target = null;
        error = "";
        if (values.Count == 0)
            return true;
        if (values.Count == 1
            && Uri.TryCreate(values[0], UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)
            && uri.Host.Length > 0)
        {
            target = uri;
            return true;
        }

        error = $"{QueryName}: one absolute http(s) URL was expected, e.g. ?{QueryName}=https://your.app/hooks";
        return false;
    }

    /// <summary>The target as logs may show it: a receiver's query string or user info can hold its own secret.</summary>
    public static string ForLog(Uri target) => $"{target.Scheme}://{target.Authority}{target.AbsolutePath}";
}

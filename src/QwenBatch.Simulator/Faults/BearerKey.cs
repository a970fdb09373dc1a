using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace QwenBatch.Simulator.Faults;

/// <summary>The caller's API key, known only by a fingerprint: stats and logs never carry the key itself.</summary>
internal static class BearerKey
{
    private const string Scheme = "Bearer ";

    /// <summary>"key_" + the first 8 hex digits of SHA-256(key); null when there is no usable bearer token.</summary>
    public static string? Fingerprint(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) || string.IsNullOrWhiteSpace(header[Scheme.Length..]))
            return null;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()));
        return "key_" + Convert.ToHexStringLower(hash)[..8];
    }
}

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace QwenBatch.Providers.WaveSpeed;

/// <summary>
/// WaveSpeed's webhook deliveries, as its "Verifying Webhooks" page documents them: headers <c>webhook-id</c>,
/// <c>webhook-timestamp</c> (unix seconds) and <c>webhook-signature: v3,&lt;hex&gt;</c>, the lowercase hex of
/// HMAC-SHA256 over <c>{id}.{timestamp}.{raw body}</c>, keyed by the account's webhook secret without its <c>whsec_</c>
/// prefix (the rest as UTF-8, not base64-decoded). A delivery older than 300 s is refused. The body is the prediction, the
/// same object the result endpoint's <c>data</c> carries.
/// </summary>
public static class WaveSpeedWebhook
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(300);

    private const string SecretPrefix = "whsec_";
    private const string Version = "v3,";

    /// <summary>The HMAC key of a secret as <c>GET /api/v3/webhook/secret</c> gives it.</summary>
    public static byte[] Key(string secret) =>
        Encoding.UTF8.GetBytes(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);

    /// <summary>
    /// Whether a delivery is WaveSpeed's and fresh. Every signature the header lists (space-separated) is tried, each
    /// compared in constant time. A timestamp further than <see cref="MaxAge"/> from now, either way, is stale.
    /// </summary>
    public static WebhookCheck Check(string? id, string? timestamp, string? signature, ReadOnlySpan<byte> body, byte[] key, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(timestamp) || string.IsNullOrEmpty(signature)
            || !long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            return WebhookCheck.NotSigned;
        }

        var age = now - DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(seconds, 0, DateTimeOffset.MaxValue.ToUnixTimeSeconds()));
        if (age > MaxAge || age < -MaxAge)
        {
            return WebhookCheck.Stale;
        }

        var prefix = Encoding.UTF8.GetBytes($"{id}.{timestamp}.");
        var signed = new byte[prefix.Length + body.Length];
        prefix.CopyTo(signed, 0);
        body.CopyTo(signed.AsSpan(prefix.Length));
        var expected = HMACSHA256.HashData(key, signed);

        var matched = false;
        foreach (var entry in signature.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (entry.StartsWith(Version, StringComparison.Ordinal) && entry.Length - Version.Length == expected.Length * 2 && TryHex(entry.AsSpan(Version.Length), out var given))
            {
                matched |= CryptographicOperations.FixedTimeEquals(given, expected);
            }
        }

        return matched ? WebhookCheck.Valid : WebhookCheck.BadSignature;
    }

    /// <summary>The prediction a delivery carries: its id and what it says, or null when the body is not one.</summary>
    public static WebhookDelivery? Read(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var json = JsonDocument.ParseValue(ref reader);
            var root = json.RootElement;
            return root.ValueKind == JsonValueKind.Object && root.Str("id") is { Length: > 0 } id
                ? new WebhookDelivery(id, WaveSpeedWire.Result(root.Clone()))
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool TryHex(ReadOnlySpan<char> hex, out byte[] bytes)
    {
        try
        {
            bytes = Convert.FromHexString(hex);
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }
}

/// <summary>What a check of a delivery's headers found.</summary>
public enum WebhookCheck
{
    Valid,

    /// <summary>A header missing or malformed.</summary>
    NotSigned,

    /// <summary>Signed longer ago (or further ahead) than the provider's maximum age.</summary>
    Stale,

    BadSignature,
}

/// <param name="RequestId">The provider's task, as its submit answered.</param>
/// <param name="Result">What the task came to, as a poll would have said.</param>
public sealed record WebhookDelivery(string RequestId, PollResult Result);

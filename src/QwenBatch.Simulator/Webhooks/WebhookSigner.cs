using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace QwenBatch.Simulator.Webhooks;

/// <summary>
/// The account's webhook secret and WaveSpeed's signature of one delivery: <c>v3,</c> and the lowercase hex of HMAC-SHA256
/// over <c>{webhook-id}.{webhook-timestamp}.{raw body}</c>, keyed with the UTF-8 bytes of the secret after its <c>whsec_</c>
/// prefix. WaveSpeed's page says not to base64-decode that rest, unlike Standard Webhooks' <c>whsec_</c> secrets.
/// </summary>
internal sealed class WebhookSigner
{
    public const string Version = "v3";

    private readonly byte[] _key;

    /// <param name="secret">A validated <see cref="SimulatorOptions.WebhookSecret"/>, or null for a random one.</param>
    public WebhookSigner(string? secret)
    {
        Secret = secret ?? NewSecret();
        _key = Encoding.UTF8.GetBytes(Secret[SimulatorOptions.WebhookSecretPrefix.Length..]);
    }

    /// <summary>The secret with its prefix, as <c>GET /api/v3/webhook/secret</c> answers it. Never logged.</summary>
    public string Secret { get; }

    public string Sign(string webhookId, long timestamp, ReadOnlySpan<byte> body) =>
        Version + "," + Convert.ToHexStringLower(Hash(webhookId, timestamp, body));

    /// <summary>A signature of the right form that does not verify: the right one with its first byte inverted.</summary>
    public string Spoil(string webhookId, long timestamp, ReadOnlySpan<byte> body)
    {
        var hash = Hash(webhookId, timestamp, body);
        hash[0] ^= 0xFF;
        return Version + "," + Convert.ToHexStringLower(hash);
    }

    private byte[] Hash(string webhookId, long timestamp, ReadOnlySpan<byte> body)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        hmac.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{webhookId}.{timestamp}.")));
        hmac.AppendData(body);
        return hmac.GetHashAndReset();
    }

    /// <summary>
    /// Base64 after the prefix, as Standard Webhooks secrets look: a receiver that decodes it, as those libraries do, gets
    /// a wrong key here, as it would against WaveSpeed.
    /// </summary>
    private static string NewSecret() => SimulatorOptions.WebhookSecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
}

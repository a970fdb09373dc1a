using System.Security.Cryptography;
using System.Text;
using QwenBatch.Testing.Http;

namespace QwenBatch.Simulator.Tests.TestSupport;

/// <summary>
/// What a receiver does with a delivery, written here from WaveSpeed's verifying page rather than with the simulator's
/// signer: HMAC-SHA256 keyed with the secret after "whsec_" (its UTF-8 bytes, not base64-decoded) over
/// "{webhook-id}.{webhook-timestamp}.{raw body}", sent as "v3," and lowercase hex; deliveries older than 300 s are refused.
/// </summary>
internal static class WebhookCheck
{
    public const int MaxAgeSeconds = 300;

    public static bool Verifies(HookRequest delivery, string secret)
    {
        var key = Encoding.UTF8.GetBytes(secret["whsec_".Length..]);
        var signed = Encoding.UTF8.GetBytes($"{delivery.Headers["webhook-id"]}.{delivery.Headers["webhook-timestamp"]}.").Concat(delivery.Body).ToArray();
        var expected = Encoding.UTF8.GetBytes("v3," + Convert.ToHexStringLower(HMACSHA256.HashData(key, signed)));
        return CryptographicOperations.FixedTimeEquals(expected, Encoding.UTF8.GetBytes(delivery.Headers["webhook-signature"]));
    }

    /// <summary>Unix seconds of <c>webhook-timestamp</c>.</summary>
    public static long Timestamp(HookRequest delivery) => long.Parse(delivery.Headers["webhook-timestamp"], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Waits on the real clock, bounded, for what another thread does (a delivery arriving over loopback).</summary>
    public static async Task UntilAsync(Func<bool> condition, string what)
    {
        var started = TimeProvider.System.GetTimestamp();
        while (!condition())
        {
            TimeProvider.System.GetElapsedTime(started).ShouldBeLessThan(TimeSpan.FromSeconds(20), $"still waiting for {what}");
            await Task.Delay(10);
        }
    }
}

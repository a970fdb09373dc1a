using System.Security.Cryptography;
using System.Text;
using QwenBatch.Simulator.Webhooks;

namespace QwenBatch.Simulator.Tests.Webhooks;

public sealed class WebhookSignerTests
{
    // The part after the prefix is valid base64: WaveSpeed keys with its text, and so must the signer.
    private const string Secret = "whsec_dGhpcyBpcyBiYXNlNjQ=";

    [Fact]
    public void Sign_KeysWithTheTextAfterThePrefixNotItsBase64Decoding()
    {
        var body = Encoding.UTF8.GetBytes("""{"id":"sim_x","status":"completed"}""");

        var signature = new WebhookSigner(Secret).Sign("evt1", 1_767_225_600, body);

        var signed = Encoding.UTF8.GetBytes("evt1.1767225600.").Concat(body).ToArray();
        signature.ShouldBe("v3," + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes("dGhpcyBpcyBiYXNlNjQ="), signed)));
        signature.ShouldNotBe("v3," + Convert.ToHexStringLower(HMACSHA256.HashData(Convert.FromBase64String("dGhpcyBpcyBiYXNlNjQ="), signed)));
    }

    [Fact]
    public void Spoil_HasTheFormOfASignatureButDiffers()
    {
        var signer = new WebhookSigner(Secret);
        var body = "{}"u8.ToArray();

        var spoiled = signer.Spoil("evt1", 1, body);

        spoiled.ShouldMatch("^v3,[0-9a-f]{64}$");
        spoiled.ShouldNotBe(signer.Sign("evt1", 1, body));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(4, 8)]
    public void BackoffAfter_DoublesFromOneSecond(int attempt, int seconds) =>
        WebhookSchedule.BackoffAfter(attempt).ShouldBe(TimeSpan.FromSeconds(seconds));
}

using System.Security.Cryptography;
using System.Text;
using QwenBatch.Providers;
using QwenBatch.Providers.WaveSpeed;

namespace QwenBatch.Core.Tests.Providers;

/// <summary>
/// WaveSpeed's delivery check, against signatures computed here as its "Verifying Webhooks" page says: HMAC-SHA256 keyed
/// by the secret without <c>whsec_</c> (not base64-decoded), over <c>{id}.{timestamp}.{body}</c>, sent as <c>v3,&lt;hex&gt;</c>.
/// </summary>
public sealed class WaveSpeedWebhookTests
{
    private const string Secret = "whsec_c2VjcmV0LW5vdC1iYXNlNjQ=";
    private const string Id = "45b392b22c3b449fa935bd4dc";
    private static readonly DateTimeOffset Now = new(2026, 12, 8, 2, 0, 0, TimeSpan.Zero);
    private static readonly byte[] Body = Encoding.UTF8.GetBytes(
        """{"id":"pred-1","model":"wavespeed-ai/qwen-image/edit-plus","outputs":["https://cdn.example/out.png"],"has_nsfw_contents":[false],"status":"completed","timings":{"inference":2100}}""");

    [Fact]
    public void Check_SignedAsDocumented_IsValid() =>
        Check(Signature(Id, Stamp(Now), Body)).ShouldBe(WebhookCheck.Valid);

    [Fact]
    public void Check_KeyIsTheSecretTextNotItsBase64Bytes()
    {
        var decodedKey = Convert.FromBase64String(Secret["whsec_".Length..]);
        var signedWithDecoded = "v3," + Convert.ToHexStringLower(HMACSHA256.HashData(decodedKey, Encoding.UTF8.GetBytes($"{Id}.{Stamp(Now)}.").Concat(Body).ToArray()));

        Check(signedWithDecoded).ShouldBe(WebhookCheck.BadSignature);
    }

    [Fact]
    public void Check_OneOfSeveralSignaturesMatches_IsValid() =>
        Check($"v3,{new string('0', 64)} {Signature(Id, Stamp(Now), Body)}").ShouldBe(WebhookCheck.Valid);

    [Theory]
    [InlineData("body")]
    [InlineData("id")]
    [InlineData("timestamp")]
    public void Check_AnythingChangedAfterSigning_IsABadSignature(string changed)
    {
        var signature = Signature(Id, Stamp(Now), Body);
        var body = changed == "body" ? Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Body).Replace("completed", "failed", StringComparison.Ordinal)) : Body;
        var id = changed == "id" ? "another-id" : Id;
        var stamp = changed == "timestamp" ? Stamp(Now.AddSeconds(-1)) : Stamp(Now);

        WaveSpeedWebhook.Check(id, stamp, signature, body, WaveSpeedWebhook.Key(Secret), Now).ShouldBe(WebhookCheck.BadSignature);
    }

    [Theory]
    [InlineData("v1,")]
    [InlineData("v3")]
    [InlineData("v3,not-hex")]
    public void Check_SignatureNotInTheV3Form_IsABadSignature(string prefix) =>
        Check(prefix + (prefix.EndsWith(',') ? Signature(Id, Stamp(Now), Body)[3..] : "")).ShouldBe(WebhookCheck.BadSignature);

    [Theory]
    [InlineData(300, WebhookCheck.Valid)]
    [InlineData(301, WebhookCheck.Stale)]
    [InlineData(-301, WebhookCheck.Stale)]
    public void Check_Age_RefusedBeyond300Seconds(int ageSeconds, WebhookCheck expected)
    {
        var stamp = Stamp(Now.AddSeconds(-ageSeconds));
        WaveSpeedWebhook.Check(Id, stamp, Signature(Id, stamp, Body), Body, WaveSpeedWebhook.Key(Secret), Now).ShouldBe(expected);
    }

    [Theory]
    [InlineData(null, "1", "v3,00")]
    [InlineData("id", null, "v3,00")]
    [InlineData("id", "1", null)]
    [InlineData("id", "soon", "v3,00")]
    public void Check_HeaderMissingOrMalformed_IsNotSigned(string? id, string? stamp, string? signature) =>
        WaveSpeedWebhook.Check(id, stamp, signature, Body, WaveSpeedWebhook.Key(Secret), Now).ShouldBe(WebhookCheck.NotSigned);

    [Fact]
    public void Read_CompletedPrediction_IsItsTaskWithOutputsAndInference()
    {
        var delivery = WaveSpeedWebhook.Read(Body).ShouldNotBeNull();

        delivery.RequestId.ShouldBe("pred-1");
        delivery.Result.Status.ShouldBe(PollStatus.Completed);
        delivery.Result.Outputs!.Single().Url.ShouldBe("https://cdn.example/out.png");
        delivery.Result.Inference.ShouldBe(TimeSpan.FromMilliseconds(2100));
    }

    [Fact]
    public void Read_FailedPrediction_CarriesItsError()
    {
        var delivery = WaveSpeedWebhook.Read("""{"id":"pred-2","status":"failed","error":"content policy"}"""u8).ShouldNotBeNull();

        (delivery.Result.Status, delivery.Result.Error).ShouldBe((PollStatus.Failed, "content policy"));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("""{"status":"completed"}""")]
    public void Read_NotAPrediction_IsNull(string body) => WaveSpeedWebhook.Read(Encoding.UTF8.GetBytes(body)).ShouldBeNull();

    private static WebhookCheck Check(string signature) =>
        WaveSpeedWebhook.Check(Id, Stamp(Now), signature, Body, WaveSpeedWebhook.Key(Secret), Now);

    private static string Stamp(DateTimeOffset at) => at.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string Signature(string id, string stamp, byte[] body)
    {
        var key = Encoding.UTF8.GetBytes(Secret["whsec_".Length..]);
        return "v3," + Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{stamp}.").Concat(body).ToArray()));
    }
}

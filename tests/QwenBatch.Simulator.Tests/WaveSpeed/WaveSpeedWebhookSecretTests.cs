using System.Net;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.WaveSpeed;

/// <summary><c>GET /api/v3/webhook/secret</c>: the account's one secret, behind the same Bearer check as the rest of the API.</summary>
public sealed class WaveSpeedWebhookSecretTests
{
    private const string SecretPath = "api/v3/webhook/secret";

    [Fact]
    public async Task Secret_Configured_IsAnsweredInTheWrapper()
    {
        var options = SimulatorScope.FastOptions();
        options.WebhookSecret = "whsec_configured-for-this-test";
        await using var sim = await SimulatorScope.StartAsync(options);

        var (code, json) = await sim.GetAsync(SecretPath);

        code.ShouldBe(HttpStatusCode.OK);
        json.GetProperty("code").GetInt32().ShouldBe(200);
        json.GetProperty("message").GetString().ShouldBe("success");
        json.GetProperty("data").GetProperty("secret").GetString().ShouldBe("whsec_configured-for-this-test");
    }

    [Fact]
    public async Task Secret_NotConfigured_IsRandomPerInstanceAndStableWithin()
    {
        await using var first = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        await using var second = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());

        var secret = (await first.GetAsync(SecretPath)).Body.GetProperty("data").GetProperty("secret").GetString()!;

        secret.ShouldStartWith("whsec_");
        secret.Length.ShouldBeGreaterThan("whsec_".Length + 20);
        (await first.GetAsync(SecretPath)).Body.GetProperty("data").GetProperty("secret").GetString().ShouldBe(secret);
        (await second.GetAsync(SecretPath)).Body.GetProperty("data").GetProperty("secret").GetString().ShouldNotBe(secret);
    }

    [Fact]
    public async Task Secret_WithoutBearer_Answers401WithoutTheSecret()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        sim.Client.DefaultRequestHeaders.Authorization = null;

        using var response = await sim.Client.GetAsync(SecretPath);

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        var text = await response.Content.ReadAsStringAsync();
        text.ShouldNotContain("whsec_");
        (await SimulatorScope.ReadJsonAsync(response)).GetProperty("code").GetInt32().ShouldBe(401);
    }
}

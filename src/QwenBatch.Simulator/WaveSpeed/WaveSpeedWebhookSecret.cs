using Microsoft.AspNetCore.Http;
using QwenBatch.Simulator.Odirouter;
using QwenBatch.Simulator.Webhooks;

namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>
/// <c>GET /api/v3/webhook/secret</c> as WaveSpeed's verifying page shows it: Bearer auth like every API call, answered
/// <c>{code, message, data: {secret}}</c> with the one secret this simulator signs every delivery with.
/// </summary>
internal sealed class WaveSpeedWebhookSecret(WaveSpeedApi api, WebhookSigner signer)
{
    public const string Path = "/api/v3/webhook/secret";

    public async Task<IResult> GetAsync(HttpContext context)
    {
        if (await api.EnterAsync(context) is { } stopped)
            return stopped;
        return TypedResults.Json(
            new WaveSpeedSecretEnvelope(200, "success", new WaveSpeedSecret(signer.Secret)),
            SimulatorJsonContext.Default.WaveSpeedSecretEnvelope);
    }
}

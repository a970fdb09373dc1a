using System.Globalization;
using System.Net.Http.Headers;

namespace QwenBatch.Simulator.Webhooks;

/// <summary>What one attempt came to; <see cref="Detail"/> is safe to log ("HTTP 500", "ConnectionError", "timeout").</summary>
internal readonly record struct WebhookAttempt(bool Delivered, string Detail);

/// <summary>
/// One attempt of one event on the wire: signed as of now, POSTed with WaveSpeed's headers, delivered on a 2xx. When to
/// try again is <see cref="WebhookDispatcher"/>'s business.
/// </summary>
internal sealed class WebhookSender(WebhookSigner signer, TimeProvider time) : IDisposable
{
    // A redirect is not followed: it counts as a failed attempt, as a POST turned into a GET would lose the body.
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(1) })
    {
        Timeout = WebhookSchedule.AttemptTimeout,
    };

    /// <summary>A refusal, a network error or a timeout is an outcome; <see cref="OperationCanceledException"/> is thrown only for <paramref name="ct"/>.</summary>
    public async Task<WebhookAttempt> SendAsync(WebhookEvent webhook, CancellationToken ct)
    {
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, webhook.Target) { Content = new ByteArrayContent(webhook.Body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("webhook-id", webhook.Id);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", webhook.BadSignature
            ? signer.Spoil(webhook.Id, timestamp, webhook.Body)
            : signer.Sign(webhook.Id, timestamp, webhook.Body));
        try
        {
            using var response = await _http.SendAsync(request, ct);
            return new WebhookAttempt(response.IsSuccessStatusCode, string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)response.StatusCode}"));
        }
        catch (HttpRequestException ex)
        {
            return new WebhookAttempt(false, ex.HttpRequestError.ToString());
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new WebhookAttempt(false, "timeout");
        }
    }

    public void Dispose() => _http.Dispose();
}

using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;

namespace QwenBatch.Providers;

/// <summary>What every provider client does the same way with HTTP: auth, sending, and classifying failures.</summary>
internal static class ProviderHttp
{
    /// <summary>Set on a POST that may be repeated without harm (an upload): the pipeline retries it as it retries a GET.</summary>
    public static readonly HttpRequestOptionsKey<bool> Repeatable = new("qwenbatch.repeatable");

    public static HttpRequestMessage Request(HttpMethod method, Uri uri, ProviderOptions options, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, uri) { Content = content };
        if (!string.IsNullOrEmpty(options.ApiKey))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
        }

        return request;
    }

    /// <summary>
    /// Sends a request. Failures become <see cref="ProviderException"/>s: a failure that may have reached the provider is
    /// <see cref="ProviderErrorKind.Uncertain"/> when <paramref name="idempotent"/> is false (a submit), so it is never
    /// repeated silently.
    /// </summary>
    public static async Task<(HttpStatusCode Status, JsonDocument? Body, TimeSpan? RetryAfter)> SendAsync(
        HttpClient http, HttpRequestMessage request, bool idempotent, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        }
        catch (HttpRequestException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            throw new ProviderException(ProviderErrorKind.NotAccepted, $"{request.Method} {Describe(request.RequestUri)}: connection refused", inner: ex);
        }
        catch (HttpRequestException ex)
        {
            throw new ProviderException(idempotent ? ProviderErrorKind.NotAccepted : ProviderErrorKind.Uncertain,
                $"{request.Method} {Describe(request.RequestUri)}: {ex.HttpRequestError}", inner: ex);
        }
        catch (Polly.CircuitBreaker.BrokenCircuitException ex)
        {
            // Refused before sending: the provider has been failing. The job waits; it does not spend an attempt.
            throw new ProviderException(ProviderErrorKind.Unavailable,
                $"{request.Method} {Describe(request.RequestUri)}: not sent, the provider is failing (circuit open)", retryAfter: ex.RetryAfter, inner: ex);
        }
        catch (Polly.Timeout.TimeoutRejectedException ex)
        {
            throw new ProviderException(idempotent ? ProviderErrorKind.NotAccepted : ProviderErrorKind.Uncertain,
                $"{request.Method} {Describe(request.RequestUri)}: timed out after {ex.Timeout}", inner: ex);
        }
        catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new ProviderException(idempotent ? ProviderErrorKind.NotAccepted : ProviderErrorKind.Uncertain,
                $"{request.Method} {Describe(request.RequestUri)}: timed out", inner: ex);
        }

        using (response)
        {
            var retryAfter = response.Headers.RetryAfter?.Delta;
            JsonDocument? body = null;
            try
            {
                var bytes = await response.Content.ReadAsByteArrayAsync(ct);
                if (bytes.Length > 0)
                {
                    body = JsonDocument.Parse(bytes);
                }
            }
            catch (JsonException) when (!response.IsSuccessStatusCode)
            {
                // Error pages are often HTML; the status code says enough.
            }
            catch (JsonException ex)
            {
                throw new ProviderException(idempotent ? ProviderErrorKind.NotAccepted : ProviderErrorKind.Uncertain,
                    $"{request.Method} {Describe(request.RequestUri)}: malformed JSON in a {(int)response.StatusCode} answer", (int)response.StatusCode, inner: ex);
            }

            return ((HttpStatusCode)(int)response.StatusCode, body, retryAfter);
        }
    }

    /// <summary>
    /// Turns a non-success status into the right kind of failure. What the provider said goes into the message without the
    /// key the request carried: some providers echo it in a 401, and the message travels further than the store's
    /// redaction reaches (Hangfire's failed and retried states, their dashboard pages, exception details in logs).
    /// </summary>
    public static ProviderException Failure(HttpRequestMessage request, HttpStatusCode status, JsonDocument? body, TimeSpan? retryAfter, bool idempotent)
    {
        var code = (int)status;
        var detail = Detail(body, request.Headers.Authorization?.Parameter);

        var what = $"{request.Method} {Describe(request.RequestUri)}: HTTP {code}{(detail is null ? "" : $" {detail}")}";
        var kind = code switch
        {
            429 or 503 => ProviderErrorKind.NotAccepted,
            404 => ProviderErrorKind.NotFound,
            >= 500 => idempotent ? ProviderErrorKind.NotAccepted : ProviderErrorKind.Uncertain,
            _ => ProviderErrorKind.Rejected,
        };
        return new ProviderException(kind, what, code, retryAfter);
    }

    public static string? Str(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static int? Int(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    /// <summary>The provider's own words, without <paramref name="key"/> (masked before the cut, so no part of it is left).</summary>
    private static string? Detail(JsonDocument? body, string? key)
    {
        if (body is null)
        {
            return null;
        }

        var root = body.RootElement;
        var text = root.Str("detail") ?? root.Str("message") ?? root.Str("error");
        if (text is not null && key is { Length: > 0 })
        {
            text = text.Replace(key, Secrets.SecretRedactor.Mask, StringComparison.Ordinal);
        }

        return text is null ? null : text.Length > 300 ? text[..300] + "…" : text;
    }

    /// <summary>The path only: query strings may carry tokens, and hosts are in the configuration anyway.</summary>
    private static string Describe(Uri? uri) => uri is null ? "?" : uri.AbsolutePath;
}

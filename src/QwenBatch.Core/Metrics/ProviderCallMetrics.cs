using System.Diagnostics.Metrics;
using System.Net;

namespace QwenBatch.Metrics;

/// <summary>
/// Every request to a provider's API, counted as it goes out (retries included): status calls (the API's GETs: a task's
/// status or result) and the 429s the provider answered, by provider.
/// </summary>
public sealed class ProviderCallMetrics
{
    private readonly Counter<long> _statusCalls;
    private readonly Counter<long> _rateLimited;

    public ProviderCallMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(EditMetrics.MeterName);
        _statusCalls = meter.CreateCounter<long>("qwenbatch.provider.status_calls", description: "Status and result requests sent to the provider");
        _rateLimited = meter.CreateCounter<long>("qwenbatch.provider.rate_limited", description: "Requests the provider answered with 429 Too Many Requests");
    }

    /// <summary>The innermost handler of a provider's client: it sees each attempt and its answer.</summary>
    public DelegatingHandler Handler(string provider) => new Counting(this, new KeyValuePair<string, object?>("provider", provider));

    private sealed class Counting(ProviderCallMetrics metrics, KeyValuePair<string, object?> provider) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method == HttpMethod.Get)
            {
                metrics._statusCalls.Add(1, provider);
            }

            var response = await base.SendAsync(request, cancellationToken);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                metrics._rateLimited.Add(1, provider);
            }

            return response;
        }
    }
}

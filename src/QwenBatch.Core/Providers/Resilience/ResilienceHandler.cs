using Polly;

namespace QwenBatch.Providers.Resilience;

/// <summary>
/// Runs every request of a provider's HttpClient through its <see cref="ProviderResilience"/> pipeline. A request
/// message can be sent only once, so each retry sends a copy (same content object; it is not disposed by a send).
/// </summary>
internal sealed class ResilienceHandler(ResiliencePipeline<HttpResponseMessage> pipeline) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(ProviderResilience.RequestKey, request);
        var attempts = 0;
        try
        {
            return await pipeline.ExecuteAsync(
                async ctx => await base.SendAsync(attempts++ == 0 ? request : Copy(request), ctx.CancellationToken),
                context);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private static HttpRequestMessage Copy(HttpRequestMessage request)
    {
        var copy = new HttpRequestMessage(request.Method, request.RequestUri) { Content = request.Content, Version = request.Version, VersionPolicy = request.VersionPolicy };
        foreach (var header in request.Headers)
        {
            copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        return copy;
    }
}

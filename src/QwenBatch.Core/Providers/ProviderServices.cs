using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.FlowControl;
using QwenBatch.Metrics;
using QwenBatch.Providers.Odirouter;
using QwenBatch.Providers.Resilience;
using QwenBatch.Providers.WaveSpeed;
using QwenBatch.Storage;

namespace QwenBatch.Providers;

/// <summary>
/// The one place the provider accounts are composed: a typed, thin client per account, under its resilience pipeline
/// (retry, circuit breaker, per-attempt timeout) and the fleet's shared request allowance, each request counted.
/// </summary>
public static class ProviderServices
{
    public static IServiceCollection AddProviderAccounts(this IServiceCollection services, IReadOnlyDictionary<string, ProviderOptions> accounts, TimeProvider time)
    {
        var pipelines = new System.Collections.Concurrent.ConcurrentDictionary<string, Polly.ResiliencePipeline<HttpResponseMessage>>();
        foreach (var (name, options) in accounts)
        {
            // One pipeline per provider, shared by every handler the factory builds, so the circuit is per provider. The
            // pipeline times each attempt; the HttpClient itself must not cut a call that is between retries. Inside it,
            // every attempt (retries too) spends the account's shared request allowance; downloads use their own client.
            services.AddHttpClient(ClientName(name), http => http.Timeout = Timeout.InfiniteTimeSpan)
                .AddHttpMessageHandler(sp => new ResilienceHandler(pipelines.GetOrAdd(name, n => ProviderResilience.Build(
                    n, options.Resilience, options.RequestTimeout, time, sp.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ProviderResilience).FullName!)))))
                .AddHttpMessageHandler(sp => new RateLimitHandler(
                    sp.GetRequiredService<IFlowControlStore>(), name, options, time, sp.GetRequiredService<ILogger<RateLimitHandler>>()))
                .AddHttpMessageHandler(sp => sp.GetRequiredService<ProviderCallMetrics>().Handler(name));
        }

        services.AddMetrics();
        services.AddSingleton<ProviderCallMetrics>();

        services.AddSingleton(sp => new ProviderRegistry(Accounts(accounts, sp)));
        return services;
    }

    private static IEnumerable<ProviderAccount> Accounts(IReadOnlyDictionary<string, ProviderOptions> accounts, IServiceProvider services)
    {
        var http = services.GetRequiredService<IHttpClientFactory>();
        var loggers = services.GetRequiredService<ILoggerFactory>();
        foreach (var (name, options) in accounts)
        {
            var client = http.CreateClient(ClientName(name));
            IImageEditProvider provider = name == ProviderNames.WaveSpeed
                ? new WaveSpeedClient(client, options, loggers.CreateLogger<WaveSpeedClient>())
                : new OdirouterClient(client, options, loggers.CreateLogger<OdirouterClient>());
            yield return new ProviderAccount(name, provider, options);
        }
    }

    private static string ClientName(string provider) => $"provider:{provider}";
}

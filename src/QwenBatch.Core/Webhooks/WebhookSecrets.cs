using QwenBatch.Providers;
using QwenBatch.Providers.WaveSpeed;

namespace QwenBatch.Webhooks;

/// <summary>
/// WaveSpeed's webhook signing key, fetched from the account once and kept. A signature that does not match may mean the
/// secret was regenerated: the key is fetched again then, at most once a minute, so forged deliveries cannot turn into a
/// stream of calls to the provider.
/// </summary>
public sealed class WebhookSecrets(ProviderRegistry providers, TimeProvider time) : IDisposable
{
    private static readonly TimeSpan RefetchAfter = TimeSpan.FromMinutes(1);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[]? _key;
    private DateTimeOffset _fetchedAt;

    /// <summary>Whether deliveries can be checked here: the WaveSpeed account has a key to ask for its secret with.</summary>
    public bool Available => providers.Find(ProviderNames.WaveSpeed) is { Client: WaveSpeedClient, Options.ApiKey: { Length: > 0 } };

    public async Task<byte[]> KeyAsync(CancellationToken ct) => Volatile.Read(ref _key) ?? await FetchAsync(null, ct);

    /// <summary>The key fetched anew after a mismatch, or null when the last fetch is too recent to try again.</summary>
    public async Task<byte[]?> RefetchedKeyAsync(CancellationToken ct)
    {
        var held = Volatile.Read(ref _key);
        return held is not null && time.GetUtcNow() - _fetchedAt < RefetchAfter ? null : await FetchAsync(held, ct);
    }

    private async Task<byte[]> FetchAsync(byte[]? replacing, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            if (_key is { } key && !ReferenceEquals(key, replacing))
            {
                return key;
            }

            var client = (WaveSpeedClient)providers.Get(ProviderNames.WaveSpeed).Client;
            var fetched = WaveSpeedWebhook.Key(await client.GetWebhookSecretAsync(ct));
            _fetchedAt = time.GetUtcNow();
            Volatile.Write(ref _key, fetched);
            return fetched;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}

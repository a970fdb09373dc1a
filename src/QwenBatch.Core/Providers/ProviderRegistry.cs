namespace QwenBatch.Providers;

/// <summary>One configured provider: its client and its account settings.</summary>
public sealed record ProviderAccount(string Name, IImageEditProvider Client, ProviderOptions Options);

/// <summary>Resolves the provider a job names to its client.</summary>
public sealed class ProviderRegistry
{
    private readonly Dictionary<string, ProviderAccount> _accounts = new(StringComparer.OrdinalIgnoreCase);

    public ProviderRegistry(IEnumerable<ProviderAccount> accounts)
    {
        foreach (var account in accounts)
        {
            _accounts[account.Name] = account;
        }
    }

    public IReadOnlyCollection<string> Names => _accounts.Keys;

    /// <summary>Every account's key, for the redactor that keeps them out of stored job errors.</summary>
    internal IEnumerable<string?> ApiKeys => _accounts.Values.Select(a => a.Options.ApiKey);

    /// <summary>The accounts with a MaxInFlight, for claiming within it.</summary>
    public IReadOnlyDictionary<string, int> MaxInFlight =>
        _accounts.Values.Where(a => a.Options.MaxInFlight is not null).ToDictionary(a => a.Name, a => a.Options.MaxInFlight!.Value);

    /// <summary>The account of that name, or null when this process has none configured.</summary>
    public ProviderAccount? Find(string name) => _accounts.GetValueOrDefault(name);

    public ProviderAccount Get(string name) =>
        _accounts.TryGetValue(name, out var account)
            ? account
            : throw new InvalidOperationException($"Provider '{name}' is not configured (known: {string.Join(", ", _accounts.Keys)}).");
}

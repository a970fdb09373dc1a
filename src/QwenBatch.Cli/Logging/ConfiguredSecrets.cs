using System.Data.Common;
using Microsoft.Extensions.Configuration;
using QwenBatch.Secrets;

namespace QwenBatch.Cli.Logging;

/// <summary>
/// Which values of the configuration are secrets: every provider's API key, the key variables, database passwords, the
/// webhook secrets (QwenBatch's own and the simulator's).
/// </summary>
internal static class ConfiguredSecrets
{
    public static readonly string[] KeyVariables = ["ODIROUTER_API_KEY", "WAVESPEED_API_KEY"];

    public static SecretRedactor From(IConfiguration configuration)
    {
        var secrets = new List<string?>();
        secrets.AddRange(configuration.GetSection("Providers").GetChildren().Select(p => p["ApiKey"]));
        secrets.AddRange(KeyVariables.Select(Environment.GetEnvironmentVariable));

        // The webhook signing secrets are secrets like the API keys: never in logs or error text.
        secrets.Add(configuration["Continuations:WebhookSecret"]);
        secrets.Add(configuration["Simulator:WebhookSecret"]);
        foreach (var connection in configuration.GetSection("ConnectionStrings").GetChildren())
        {
            secrets.Add(Password(connection.Value));
        }

        return new SecretRedactor(secrets);
    }

    private static string? Password(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return null;
        }

        try
        {
            var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
            return builder.TryGetValue("Password", out var password) || builder.TryGetValue("Pwd", out password) ? password?.ToString() : null;
        }
        catch (ArgumentException)
        {
            // Not key=value: a postgres:// URL, whose password the URL rule masks.
            return null;
        }
    }
}

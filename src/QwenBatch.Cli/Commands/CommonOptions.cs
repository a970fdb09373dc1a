using System.CommandLine;
using QwenBatch.Cli.Hosting;
using QwenBatch.Manifests;
using QwenBatch.Providers;

namespace QwenBatch.Cli.Commands;

/// <summary>The options several commands share, each mapped onto a configuration key so the layering stays in one place.</summary>
internal static class CommonOptions
{
    public static Option<string?> Provider() => new Option<string?>("--provider")
    {
        Description = "Provider for the batch: odirouter, wavespeed or simulator (the in-process simulator; no key, no charges). Default: simulator.",
    }.AcceptOnlyFromAmong(ProviderNames.Odirouter, ProviderNames.WaveSpeed, ProviderNames.Simulator);

    /// <summary>A provider option for commands that only read manifests, so every provider's limits can be checked.</summary>
    public static Option<string?> AnyProvider() => new Option<string?>("--provider")
    {
        Description = "Check the manifest against this provider's field limits: odirouter, wavespeed or simulator (odirouter's limits). Default: simulator.",
    }.AcceptOnlyFromAmong([.. ProviderNames.All]);

    public static Option<string?> PromptTemplate() => new("--prompt")
    {
        Description = "A prompt template for every job, with {column} filled from the row, e.g. \"White background, keep the {Title} unchanged\".",
    };

    public static Option<string?> Map() => new("--map")
    {
        Description = "Map manifest fields to foreign column names, e.g. \"id=Handle,images=Image Src\" for a shop's product export.",
    };

    /// <summary>The manifest reading options from the command line; a malformed --map is a usage error.</summary>
    public static ManifestOptions ManifestOptions(string provider, string? prompt, string? map)
    {
        var (fieldMap, error) = QwenBatch.Manifests.ManifestOptions.ParseMap(map);
        if (error is not null)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, error);
        }

        return new ManifestOptions { Provider = provider, PromptTemplate = string.IsNullOrWhiteSpace(prompt) ? null : prompt, FieldMap = fieldMap };
    }

    public static Option<string?> Storage() => new("--storage")
    {
        Description = "Output root; the batch's images and reports go to <storage>/<batch-name>/. Default: Storage:Root (output).",
    };

    public static Option<string?> Database() => new("--database")
    {
        Description = "PostgreSQL connection string. Without it, the embedded SQLite file under the state folder (.qwenbatch).",
    };

    /// <summary>A batch budget in USD: more than zero, invariant culture (<c>0.10</c>), a leading <c>$</c> allowed.</summary>
    public static Option<decimal?> Budget() => new("--budget")
    {
        Description = "Most the batch may spend, in USD (e.g. 0.10). Jobs that would exceed it are held (exit 3); a larger --budget releases them.",
        HelpName = "USD",
        CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value.TrimStart('$') : "";
            if (decimal.TryParse(text, System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var usd) && usd > 0)
            {
                return usd;
            }

            result.AddError($"--budget must be an amount in USD greater than 0, like 0.10; got '{(result.Tokens.Count == 1 ? result.Tokens[0].Value : "")}'.");
            return null;
        },
    };

    /// <summary>The batch a command acts on, by id or name.</summary>
    public static Option<string?> ThenManifest() =>
        new("--then-manifest") { Description = "A manifest enqueued as batch <name>-then when this batch ends (by whoever ends it: run, a worker, cancel)." };

    public static Option<string?> ThenWebhook() => new("--then-webhook")
    {
        Description = "A URL that receives the batch summary as a JSON POST when the batch ends (signed with Continuations:WebhookSecret, retried).",
    };

    /// <summary>The continuation the two options name; a webhook that is not an absolute http(s) URL is a usage error.</summary>
    public static QwenBatch.Continuations.Continuation Then(string? manifest, string? webhook)
    {
        if (webhook is { } url && !(Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)))
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, $"--then-webhook must be an absolute http(s) URL; got '{url}'.");
        }

        return new(manifest is { } next ? Path.GetFullPath(next) : null, webhook);
    }

    public static Argument<string> Batch() => new("batch") { Description = "The batch, by id or name." };

    /// <summary>The output root from configuration (Storage:Root, set by --storage).</summary>
    public static string StorageRoot(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        configuration["Storage:Root"] is { Length: > 0 } root ? root : "output";

    public static Option<bool> Verbose() => new("--verbose")
    {
        Description = "Log debug detail.",
    };

    /// <summary>Turns the options given on the command line into configuration overrides.</summary>
    public static Dictionary<string, string?> Overrides(string? storage, string? database, bool verbose)
    {
        var overrides = new Dictionary<string, string?>();
        if (storage is not null)
        {
            overrides["Storage:Root"] = storage;
        }

        if (database is not null)
        {
            overrides["ConnectionStrings:Postgres"] = database;
        }

        if (verbose)
        {
            overrides["Serilog:MinimumLevel:Default"] = "Debug";
        }

        return overrides;
    }
}

using System.CommandLine;
using QwenBatch.Providers;

namespace QwenBatch.Cli.Commands;

/// <summary>The options several commands share, each mapped onto a configuration key so the layering stays in one place.</summary>
internal static class CommonOptions
{
    public static Option<string?> Provider() => new Option<string?>("--provider")
    {
        Description = "Provider for the batch: odirouter, wavespeed or simulator (the in-process simulator; no key, no charges). Default: simulator.",
    }.AcceptOnlyFromAmong(ProviderNames.Odirouter, ProviderNames.WaveSpeed, ProviderNames.Simulator);

    public static Option<string?> Storage() => new("--storage")
    {
        Description = "Output root; the batch's images and reports go to <storage>/<batch-name>/. Default: Storage:Root (output).",
    };

    public static Option<string?> Database() => new("--database")
    {
        Description = "PostgreSQL connection string. Without it, the embedded SQLite file under the state folder (.qwenbatch).",
    };

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

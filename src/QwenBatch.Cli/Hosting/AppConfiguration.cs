using Microsoft.Extensions.Configuration;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// Configuration in the .NET convention: appsettings.json (beside the tool, then in the working directory) →
/// appsettings.{Environment}.json → environment variables (QWENBATCH_-prefixed and plain Section__Key) → command-line options.
/// </summary>
internal static class AppConfiguration
{
    public static IConfiguration Build(IReadOnlyDictionary<string, string?> commandLine)
    {
        var environment = Environment.GetEnvironmentVariable("QWENBATCH_ENVIRONMENT")
            ?? Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT")
            ?? "Production";
        var builder = new ConfigurationBuilder();
        foreach (var directory in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() }.Distinct())
        {
            builder.AddJsonFile(Path.Combine(directory, "appsettings.json"), optional: true, reloadOnChange: false);
            builder.AddJsonFile(Path.Combine(directory, $"appsettings.{environment}.json"), optional: true, reloadOnChange: false);
        }

        return builder
            .AddEnvironmentVariables()
            .AddEnvironmentVariables("QWENBATCH_")
            .AddInMemoryCollection(commandLine)
            .Build();
    }
}

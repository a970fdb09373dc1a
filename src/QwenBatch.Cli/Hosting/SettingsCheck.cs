using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// Binds a configuration section to its typed options and validates their DataAnnotations at start-up. A failure is a
/// configuration error (exit 1) whose line names the setting as the user writes it (<c>Hangfire:WorkerCount</c>, or
/// <c>Hangfire__WorkerCount</c> in the environment) and the allowed range, rather than the options type's member name.
/// </summary>
internal static class SettingsCheck
{
    public static T Bind<T>(IConfiguration configuration, string section)
        where T : new()
    {
        var options = new T();
        try
        {
            configuration.GetSection(section).Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            // "Failed to convert configuration value '…' at 'Hangfire:WorkerCount' to type 'System.Int32'."
            throw new CliException(ExitCodes.UsageOrConfiguration, $"Invalid configuration: {ex.Message}");
        }

        var errors = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), errors, validateAllProperties: true))
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, "Invalid configuration: " + string.Join("; ", errors.Select(e => Describe(section, e))));
        }

        return options;
    }

    private static string Describe(string section, ValidationResult error)
    {
        var setting = string.Join(", ", error.MemberNames.Select(m => $"{section}:{m}"));
        return $"{setting} (environment {setting.Replace(":", "__", StringComparison.Ordinal)}): {error.ErrorMessage}";
    }
}

using System.CommandLine;
using System.Text.Json;
using QwenBatch.Cli.Hosting;
using QwenBatch.Manifests;
using QwenBatch.Providers;

namespace QwenBatch.Cli.Commands;

/// <summary><c>qwenbatch validate &lt;manifest&gt;</c>: every error and warning of a manifest, without enqueueing anything.</summary>
internal static class ValidateCommand
{
    /// <summary>At most this many problems are printed as text; <c>--json</c> prints every one kept.</summary>
    private const int MaxPrinted = 200;

    public static Command Create()
    {
        var manifest = new Argument<string>("manifest") { Description = "The manifest (CSV, JSON or JSONL) to check." };
        var json = new Option<bool>("--json") { Description = "Print {\"valid\", \"jobs\", \"errors\", \"warnings\"} as JSON." };
        var provider = CommonOptions.AnyProvider();
        var prompt = CommonOptions.PromptTemplate();
        var map = CommonOptions.Map();
        var command = new Command("validate", "Check a manifest against the provider's limits and report every error with its line; nothing is enqueued.\n"
            + ExitCodes.Help("valid", ExitCodes.UsageOrConfiguration, ExitCodes.InvalidManifest))
        {
            manifest, json, provider, prompt, map,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            new Dictionary<string, string?>(),
            _ => ExecuteAsync(parse.GetValue(manifest)!, parse.GetValue(json),
                CommonOptions.ManifestOptions(parse.GetValue(provider) ?? ProviderNames.Simulator, parse.GetValue(prompt), parse.GetValue(map)))));
        return command;
    }

    private static async Task<int> ExecuteAsync(string path, bool json, ManifestOptions options)
    {
        // Streamed: a 100k-row manifest is counted, not held.
        var stream = ManifestReader.Open(path, options);
        foreach (var _ in stream.Jobs())
        {
        }

        var diagnostics = stream.Diagnostics;
        var valid = diagnostics.ErrorCount == 0;
        var errors = ManifestStream.Sorted(diagnostics.Errors);
        var warnings = ManifestStream.Sorted(diagnostics.Warnings);
        if (json)
        {
            await Console.Out.WriteLineAsync(JsonReport(valid, stream.JobCount, errors, warnings));
        }
        else
        {
            foreach (var problem in errors.Take(MaxPrinted))
            {
                await Console.Error.WriteLineAsync($"error: {problem}");
            }

            foreach (var problem in warnings.Take(MaxPrinted))
            {
                await Console.Error.WriteLineAsync($"warning: {problem}");
            }

            await Console.Out.WriteLineAsync(valid
                ? $"{path}: valid, {stream.JobCount} job(s), {diagnostics.WarningCount} warning(s)."
                : $"{path}: invalid, {diagnostics.ErrorCount} error(s), {diagnostics.WarningCount} warning(s); {stream.JobCount} job(s) are valid.");
        }

        return valid ? ExitCodes.Success : ExitCodes.InvalidManifest;
    }

    /// <summary>The documented shape: <c>{"valid", "jobs", "errors": [{"line", "field", "message"}], "warnings": [...]}</c>.</summary>
    private static string JsonReport(bool valid, int jobs, List<ManifestError> errors, List<ManifestError> warnings)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteBoolean("valid", valid);
            writer.WriteNumber("jobs", jobs);
            Problems(writer, "errors", errors);
            Problems(writer, "warnings", warnings);
            writer.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Problems(Utf8JsonWriter writer, string name, List<ManifestError> problems)
    {
        writer.WriteStartArray(name);
        foreach (var problem in problems)
        {
            writer.WriteStartObject();
            writer.WriteNumber("line", problem.Line);
            if (problem.Field is null)
            {
                writer.WriteNull("field");
            }
            else
            {
                writer.WriteString("field", problem.Field);
            }

            writer.WriteString("message", problem.Message);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}

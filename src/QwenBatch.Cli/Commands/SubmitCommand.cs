using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Hosting;
using QwenBatch.Cli.Manifests;
using QwenBatch.Continuations;
using QwenBatch.Providers;

namespace QwenBatch.Cli.Commands;

/// <summary>
/// <c>qwenbatch submit &lt;manifest&gt;</c>: enqueue a batch for the workers on the store, and return. Same validation and
/// import as <c>run</c>; the batch's output folder (from <c>--storage</c>) is recorded on it for whichever worker runs it.
/// </summary>
internal static class SubmitCommand
{
    public static Command Create()
    {
        var manifest = new Argument<string>("manifest") { Description = "The manifest (CSV, JSON or JSONL) of edit jobs." };
        var provider = CommonOptions.Provider();
        var storage = CommonOptions.Storage();
        var database = CommonOptions.Database();
        var budget = CommonOptions.Budget();
        var verbose = CommonOptions.Verbose();
        var prompt = CommonOptions.PromptTemplate();
        var map = CommonOptions.Map();
        var json = new Option<bool>("--json") { Description = "Print {\"batch\": \"<id>\", \"name\", \"jobs\": N, \"resumed\"} as JSON." };
        var skipInvalid = new Option<bool>("--skip-invalid") { Description = "Enqueue the valid jobs of an invalid manifest and list the skipped ones." };
        var name = new Option<string?>("--name") { Description = "Batch name (default: the manifest's name or file name). The same name resumes the same batch." };
        var thenManifest = CommonOptions.ThenManifest();
        var thenWebhook = CommonOptions.ThenWebhook();
        var command = new Command("submit", "Enqueue a manifest as a batch for the workers sharing the store ('qwenbatch worker'), and return.\n"
            + ExitCodes.Help("enqueued", ExitCodes.UsageOrConfiguration, ExitCodes.InvalidManifest))
        {
            manifest, provider, storage, database, budget, name, json, prompt, map, skipInvalid, thenManifest, thenWebhook, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(parse.GetValue(storage), parse.GetValue(database), parse.GetValue(verbose)),
            configuration =>
            {
                var providerName = parse.GetValue(provider) ?? ProviderNames.Simulator;
                var options = CommonOptions.ManifestOptions(providerName, parse.GetValue(prompt), parse.GetValue(map));
                var request = new ImportRequest(parse.GetValue(manifest)!, providerName, parse.GetValue(name), options, parse.GetValue(skipInvalid), parse.GetValue(budget));
                var then = CommonOptions.Then(parse.GetValue(thenManifest), parse.GetValue(thenWebhook));
                return ExecuteAsync(configuration, request, then, parse.GetValue(json), ct);
            }));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, ImportRequest request, Continuation then, bool json, CancellationToken ct)
    {
        if (await ManifestImport.CheckAsync(request) is not { } check)
        {
            return ExitCodes.InvalidManifest;
        }

        await using var checkedManifest = check;

        await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
        if (await ManifestImport.ImportAsync(runtime.Store, check, CommonOptions.StorageRoot(configuration), ct) is not { } import)
        {
            return ExitCodes.InvalidManifest;
        }

        var batch = import.Batch;
        if (!then.IsEmpty)
        {
            await runtime.Store.SetContinuationAsync(batch.Id, then, ct);
        }

        if (json)
        {
            await Console.Out.WriteLineAsync(JsonSerializer.Serialize(new SubmitJson(
                batch.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), batch.Name, import.JobsAdded, import.Resumed, batch.StorageDir, import.JobsReplaced), CliJson.Options));
        }
        else
        {
            await Console.Out.WriteLineAsync(import.Resumed
                ? $"Batch {batch.Id} '{batch.Name}' resumed: {import.JobsAdded} new job(s){(import.JobsReplaced > 0 ? $", of which {import.JobsReplaced} replace jobs of changed rows" : "")}; outputs in {batch.StorageDir}"
                : $"Batch {batch.Id} '{batch.Name}' enqueued: {import.JobsAdded} job(s); outputs in {batch.StorageDir}");
        }

        return ExitCodes.Success;
    }

    /// <summary>The documented shape of <c>submit --json</c>; <c>replaced</c>: older jobs superseded by changed rows.</summary>
    private sealed record SubmitJson(string Batch, string Name, int Jobs, bool Resumed, string Storage, int Replaced);
}

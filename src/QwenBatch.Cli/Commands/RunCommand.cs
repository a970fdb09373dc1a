using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using QwenBatch.Batches;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Cli.Manifests;
using QwenBatch.Cli.Progress;
using QwenBatch.Continuations;
using QwenBatch.Edits;
using QwenBatch.Manifests;
using QwenBatch.Providers;
using QwenBatch.Reports;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Storage;

namespace QwenBatch.Cli.Commands;

/// <summary><c>qwenbatch run &lt;manifest&gt;</c>: enqueue (or resume) a batch and process it in this process until it settles.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var manifest = new Argument<string>("manifest") { Description = "The manifest (CSV, JSON or JSONL) of edit jobs." };
        var provider = CommonOptions.Provider();
        var storage = CommonOptions.Storage();
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var prompt = CommonOptions.PromptTemplate();
        var map = CommonOptions.Map();
        var skipInvalid = new Option<bool>("--skip-invalid") { Description = "Enqueue the valid jobs of an invalid manifest and list the skipped ones (in skipped.csv of the batch folder)." };
        var budget = CommonOptions.Budget();
        var name = new Option<string?>("--name") { Description = "Batch name (default: the manifest's name or file name). The same name resumes the same batch." };
        var thenManifest = CommonOptions.ThenManifest();
        var thenWebhook = CommonOptions.ThenWebhook();
        var command = new Command("run", "Submit a manifest and process it in this process until every job has finished; a rerun resumes.\n"
            + ExitCodes.Help("all jobs succeeded", ExitCodes.UsageOrConfiguration, ExitCodes.InvalidManifest, ExitCodes.JobsDidNotSucceed, ExitCodes.Interrupted))
        {
            manifest, provider, storage, database, budget, name, prompt, map, skipInvalid, thenManifest, thenWebhook, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(parse.GetValue(storage), parse.GetValue(database), parse.GetValue(verbose)),
            configuration =>
            {
                var providerName = parse.GetValue(provider) ?? ProviderNames.Simulator;
                var options = CommonOptions.ManifestOptions(providerName, parse.GetValue(prompt), parse.GetValue(map));
                var then = CommonOptions.Then(parse.GetValue(thenManifest), parse.GetValue(thenWebhook));
                return ExecuteAsync(configuration, new ImportRequest(parse.GetValue(manifest)!, providerName, parse.GetValue(name), options, parse.GetValue(skipInvalid), parse.GetValue(budget)), then);
            }));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, ImportRequest request, Continuation then)
    {
        var provider = request.Provider;
        if (await ManifestImport.CheckAsync(request) is not { } check)
        {
            return ExitCodes.InvalidManifest;
        }

        await using var checkedManifest = check;

        using var shutdown = new ShutdownSignal();
        await using var runtime = await Runtime.StartAsync(configuration, provider == ProviderNames.Simulator, shutdown.Token);
        if (provider != ProviderNames.Simulator && runtime.Providers.Get(provider).Options is { BaseUrl: null } or { ApiKey: null })
        {
            var section = provider == ProviderNames.WaveSpeed ? "WaveSpeed" : "Odirouter";
            throw new CliException(ExitCodes.UsageOrConfiguration,
                $"The {provider} provider needs Providers:{section}:BaseUrl and an API key (set {provider.ToUpperInvariant()}_API_KEY).");
        }

        if (await ManifestImport.ImportAsync(runtime.Store, check, CommonOptions.StorageRoot(configuration), shutdown.Token) is not { } import)
        {
            return ExitCodes.InvalidManifest;
        }

        var batch = import.Batch;
        if (!then.IsEmpty)
        {
            await runtime.Store.SetContinuationAsync(batch.Id, then, shutdown.Token);
        }

        using var batchScope = runtime.LoggerFactory.CreateLogger("QwenBatch.Cli.Commands.RunCommand")
            .BeginScope(new Dictionary<string, object> { ["BatchId"] = batch.Id, ["BatchName"] = batch.Name });
        Console.Error.WriteLine(import.Resumed
            ? $"Resuming batch '{batch.Name}' ({import.JobsAdded} new job(s){(import.JobsReplaced > 0 ? $", of which {import.JobsReplaced} replace jobs of changed rows" : "")}); outputs in {batch.StorageDir}"
            : $"Batch '{batch.Name}': {import.JobsAdded} job(s); outputs in {batch.StorageDir}");

        var server = await runtime.StartEngineAsync(new EngineScope(batch.Id), shutdown.Token);
        runtime.Signals.WorkAdded();

        // Shown until the summary, through the server's stop, so what stopping logs prints above the bar and not into it.
        await using var progress = await RunProgress.StartAsync(runtime.Store, batch.Id, runtime.Time);
        string? fired = null;
        try
        {
            if (await SettledAsync(runtime, batch.Id, shutdown.Token))
            {
                // This process ended the batch, and may be the only one on the store: its continuation is fired now, as a
                // Hangfire job of this server, before the server stops.
                fired = await runtime.ContinueAsync(batch.Id, shutdown.Token);
            }
        }
        finally
        {
            await EditServer.StopAsync(server);
        }

        await BatchReports.WriteAsync(runtime.Store, batch, ReportFormats.All, TimeProvider.System, CancellationToken.None);
        var final = await runtime.Store.GetProgressAsync(batch.Id, CancellationToken.None);

        // The last frame and the summary show the same counts: read once, after every step under way has recorded its result.
        await progress.CompleteAsync(final, Summary(batch, final));
        var jobs = await runtime.Store.GetEditsAsync(batch.Id, CancellationToken.None);
        await HeldJobs.PrintAsync(batch, jobs);
        if (fired is not null)
        {
            Console.Error.WriteLine($"Continuation: {fired}");
        }

        if (shutdown.Requested && !final.IsSettled)
        {
            await Console.Error.WriteLineAsync("Interrupted; state is kept. Run the same command again to finish the batch.");
            return ExitCodes.Interrupted;
        }

        // An edit superseded by a changed row is not the batch's result; the current edit of each manifest id is.
        return jobs.Where(j => j.SupersededBy is null).All(j => j.State == EditState.Succeeded) ? ExitCodes.Success : ExitCodes.JobsDidNotSucceed;
    }

    /// <summary>Waits until every edit of the batch has settled (true), or the user stops the run (false).</summary>
    private static async Task<bool> SettledAsync(Runtime runtime, long batchId, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            var settled = runtime.Signals.SettledWake;
            if ((await runtime.Store.GetProgressAsync(batchId, stopping)).IsSettled)
            {
                return true;
            }

            // An edit of this process settling wakes the look at once; a cancel from another process is seen within a second.
            using var sleep = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            await Task.WhenAny(settled, Task.Delay(TimeSpan.FromSeconds(1), runtime.Time, sleep.Token));
            await sleep.CancelAsync();
        }

        return false;
    }

    private static string Summary(BatchRecord batch, BatchProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"Batch '{batch.Name}': {p.Count(EditState.Succeeded)} succeeded, {p.Count(EditState.Failed)} failed, {p.Count(EditState.Cancelled)} cancelled, "
        + $"{p.Total - p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value)} unfinished of {p.Total}; spent ${p.SpentUsd:0.00}. "
        + $"Report: {Path.Combine(batch.StorageDir, CsvReportWriter.FileName)}");
}

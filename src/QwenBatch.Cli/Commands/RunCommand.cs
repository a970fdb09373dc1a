using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using QwenBatch.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Cli.Manifests;
using QwenBatch.Jobs;
using QwenBatch.Manifests;
using QwenBatch.Providers;
using QwenBatch.Reports;
using QwenBatch.Server;
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
        var name = new Option<string?>("--name") { Description = "Batch name (default: the manifest's name or file name). The same name resumes the same batch." };
        var command = new Command("run", "Submit a manifest and process it in this process until every job has finished; a rerun resumes.\n" + ExitCodes.Help)
        {
            manifest, provider, storage, database, name, prompt, map, skipInvalid, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(parse.GetValue(storage), parse.GetValue(database), parse.GetValue(verbose)),
            configuration =>
            {
                var providerName = parse.GetValue(provider) ?? ProviderNames.Simulator;
                var options = CommonOptions.ManifestOptions(providerName, parse.GetValue(prompt), parse.GetValue(map));
                return ExecuteAsync(configuration, new RunRequest(parse.GetValue(manifest)!, providerName, parse.GetValue(name), options, parse.GetValue(skipInvalid)));
            }));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, RunRequest request)
    {
        var provider = request.Provider;

        // First pass: validate the whole file, streamed, before anything is enqueued.
        var check = ManifestReader.Open(request.ManifestPath, request.Options);
        var skipped = new List<SkippedJob>();
        foreach (var _ in check.Jobs(skipped.Add))
        {
        }

        if (!await ReportProblemsAsync(check, request.SkipInvalid))
        {
            return ExitCodes.InvalidManifest;
        }

        using var shutdown = new ShutdownSignal();
        await using var runtime = await Runtime.StartAsync(configuration, provider == ProviderNames.Simulator, shutdown.Token);
        if (provider != ProviderNames.Simulator && runtime.Providers.Get(provider).Options is { BaseUrl: null } or { ApiKey: null })
        {
            var section = provider == ProviderNames.WaveSpeed ? "WaveSpeed" : "Odirouter";
            throw new CliException(ExitCodes.UsageOrConfiguration,
                $"The {provider} provider needs Providers:{section}:BaseUrl and an API key (set {provider.ToUpperInvariant()}_API_KEY).");
        }

        var storageRoot = configuration["Storage:Root"] is { Length: > 0 } root ? root : "output";
        var import = await ImportAsync(runtime.Store, request, check.Name, storageRoot, shutdown.Token);
        var batch = import.Batch;
        Console.Error.WriteLine(import.Resumed
            ? $"Resuming batch '{batch.Name}' ({import.JobsAdded} new job(s)); outputs in {batch.StorageDir}"
            : $"Batch '{batch.Name}': {import.JobsAdded} job(s); outputs in {batch.StorageDir}");
        if (skipped.Count > 0)
        {
            var list = await SkippedJobs.WriteAsync(batch.StorageDir, skipped, CancellationToken.None);
            await Console.Error.WriteLineAsync($"Skipped {skipped.Count} invalid job(s), listed in {list}");
        }

        using var progress = new CancellationTokenSource();
        var reporter = ReportProgressAsync(runtime.Store, batch.Id, progress.Token);
        try
        {
            await runtime.Server.RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), shutdown.Token);
        }
        finally
        {
            await progress.CancelAsync();
            await reporter;
        }

        await BatchReports.WriteAsync(runtime.Store, batch, ReportFormats.All, TimeProvider.System, CancellationToken.None);
        var final = await runtime.Store.GetProgressAsync(batch.Id, CancellationToken.None);
        Console.WriteLine(Summary(batch, final));
        if (shutdown.Requested && !final.IsSettled)
        {
            await Console.Error.WriteLineAsync("Interrupted; state is kept. Run the same command again to finish the batch.");
            return ExitCodes.Interrupted;
        }

        return final.Count(JobState.Succeeded) == final.Total ? ExitCodes.Success : ExitCodes.JobsDidNotSucceed;
    }

    /// <summary>Prints the manifest's errors and warnings; false when the run must stop (invalid, and not --skip-invalid).</summary>
    private static async Task<bool> ReportProblemsAsync(ManifestStream check, bool skipInvalid)
    {
        const int MaxPrinted = 200;
        var diagnostics = check.Diagnostics;
        foreach (var warning in ManifestStream.Sorted(diagnostics.Warnings).Take(MaxPrinted))
        {
            await Console.Error.WriteLineAsync($"warning: {warning}");
        }

        if (diagnostics.ErrorCount == 0)
        {
            return true;
        }

        foreach (var error in ManifestStream.Sorted(diagnostics.Errors).Take(MaxPrinted))
        {
            await Console.Error.WriteLineAsync(error.ToString());
        }

        if (diagnostics.ErrorCount > MaxPrinted)
        {
            await Console.Error.WriteLineAsync($"… and {diagnostics.ErrorCount - MaxPrinted} more error(s); 'qwenbatch validate --json' lists them all.");
        }

        if (!skipInvalid || check.JobCount == 0)
        {
            await Console.Error.WriteLineAsync($"The manifest has {diagnostics.ErrorCount} error(s); nothing was enqueued."
                + (skipInvalid ? "" : " Pass --skip-invalid to enqueue the valid jobs."));
            return false;
        }

        await Console.Error.WriteLineAsync($"The manifest has {diagnostics.ErrorCount} error(s); --skip-invalid: enqueuing the {check.JobCount} valid job(s).");
        return true;
    }

    private static async Task<BatchImport> ImportAsync(IJobStore store, RunRequest request, string? manifestName, string storageRoot, CancellationToken ct)
    {
        var provider = request.Provider;
        var path = Path.GetFullPath(request.ManifestPath);
        var batch = BatchPlanner.Batch(path, manifestName, provider, storageRoot, request.Name);
        var existing = await store.FindBatchAsync(batch.Name, ct);
        if (existing is not null && existing.Source != batch.Source && request.Name is null)
        {
            // Another manifest of the same file name: keep both, side by side.
            var suffix = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(batch.Source)))[..6];
            batch = BatchPlanner.Batch(path, manifestName, provider, storageRoot, $"{batch.Name}-{suffix}");
            existing = await store.FindBatchAsync(batch.Name, ct);
        }

        if (existing is not null && existing.Provider != provider)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration,
                $"Batch '{existing.Name}' was started with provider '{existing.Provider}'; rerun with --provider {existing.Provider}, or pass --name to start a new batch.");
        }

        // Second pass, streamed into the store's one transaction.
        return await store.ImportBatchAsync(batch, ValidJobs(request, provider, ct), ct);
    }

    /// <summary>
    /// The manifest's valid jobs, read again. If the file changed since it was validated and now has errors, the
    /// enumeration throws inside the import's transaction, so nothing is enqueued.
    /// </summary>
    private static async IAsyncEnumerable<NewJob> ValidJobs(RunRequest request, string provider, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var stream = ManifestReader.Open(request.ManifestPath, request.Options);
        foreach (var job in stream.Jobs())
        {
            ct.ThrowIfCancellationRequested();
            if (!request.SkipInvalid && stream.Diagnostics.ErrorCount > 0)
            {
                break;
            }

            foreach (var newJob in BatchPlanner.Jobs(job, provider))
            {
                yield return newJob;
            }
        }

        if (!request.SkipInvalid && stream.Diagnostics.ErrorCount > 0)
        {
            throw new CliException(ExitCodes.InvalidManifest, "The manifest changed while it was imported and is now invalid; nothing was enqueued.");
        }

        await Task.CompletedTask;
    }

    private static async Task ReportProgressAsync(IJobStore store, long batchId, CancellationToken ct)
    {
        var last = "";
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromSeconds(2), ct);
                var progress = await store.GetProgressAsync(batchId, ct);
                var line = Line(progress);
                if (line != last)
                {
                    await Console.Error.WriteLineAsync(line);
                    last = line;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static string Line(BatchProgress p)
    {
        var done = p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);
        var inFlight = p.Count(JobState.Submitting) + p.Count(JobState.AtProvider) + p.Count(JobState.Downloading);
        return string.Create(CultureInfo.InvariantCulture,
            $"{done}/{p.Total} done, {inFlight} in flight, {p.Count(JobState.Failed)} failed, spent ${p.SpentUsd:0.00}");
    }

    private static string Summary(BatchRecord batch, BatchProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"Batch '{batch.Name}': {p.Count(JobState.Succeeded)} succeeded, {p.Count(JobState.Failed)} failed, {p.Count(JobState.Cancelled)} cancelled, "
        + $"{p.Total - p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value)} unfinished of {p.Total}; spent ${p.SpentUsd:0.00}. "
        + $"Report: {Path.Combine(batch.StorageDir, CsvReportWriter.FileName)}");
}

/// <summary>What <c>run</c> was asked to do.</summary>
internal sealed record RunRequest(string ManifestPath, string Provider, string? Name, ManifestOptions Options, bool SkipInvalid);

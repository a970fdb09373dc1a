using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using QwenBatch.Batches;
using QwenBatch.Cli.Hosting;
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
        var manifest = new Argument<string>("manifest") { Description = "The manifest (CSV) of edit jobs." };
        var provider = CommonOptions.Provider();
        var storage = CommonOptions.Storage();
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var name = new Option<string?>("--name") { Description = "Batch name (default: the manifest's file name). The same name resumes the same batch." };
        var command = new Command("run", "Submit a manifest and process it in this process until every job has finished; a rerun resumes.\n" + ExitCodes.Help)
        {
            manifest, provider, storage, database, name, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(parse.GetValue(storage), parse.GetValue(database), parse.GetValue(verbose)),
            configuration => ExecuteAsync(configuration, parse.GetValue(manifest)!, parse.GetValue(provider) ?? ProviderNames.Simulator, parse.GetValue(name))));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, string manifestPath, string provider, string? name)
    {
        var manifest = CsvManifestReader.Read(manifestPath);
        if (!manifest.IsValid)
        {
            foreach (var error in manifest.Errors)
            {
                await Console.Error.WriteLineAsync(error.ToString());
            }

            await Console.Error.WriteLineAsync($"The manifest has {manifest.Errors.Count} error(s); nothing was enqueued.");
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
        var import = await ImportAsync(runtime.Store, manifest, provider, storageRoot, name, shutdown.Token);
        var batch = import.Batch;
        Console.Error.WriteLine(import.Resumed
            ? $"Resuming batch '{batch.Name}' ({import.JobsAdded} new job(s)); outputs in {batch.StorageDir}"
            : $"Batch '{batch.Name}': {import.JobsAdded} job(s); outputs in {batch.StorageDir}");

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

        var jobs = await runtime.Store.GetJobsAsync(batch.Id, CancellationToken.None);
        await CsvReportWriter.WriteAsync(batch.StorageDir, jobs, CancellationToken.None);
        var final = await runtime.Store.GetProgressAsync(batch.Id, CancellationToken.None);
        Console.WriteLine(Summary(batch, final));
        if (shutdown.Requested && !final.IsSettled)
        {
            await Console.Error.WriteLineAsync("Interrupted; state is kept. Run the same command again to finish the batch.");
            return ExitCodes.Interrupted;
        }

        return final.Count(JobState.Succeeded) == final.Total ? ExitCodes.Success : ExitCodes.JobsDidNotSucceed;
    }

    private static async Task<BatchImport> ImportAsync(IJobStore store, Manifest manifest, string provider, string storageRoot, string? name, CancellationToken ct)
    {
        var (batch, jobs) = BatchPlanner.Plan(manifest, provider, storageRoot, name);
        var existing = await store.FindBatchAsync(batch.Name, ct);
        if (existing is not null && existing.Source != batch.Source && name is null)
        {
            // Another manifest of the same file name: keep both, side by side.
            var suffix = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(batch.Source)))[..6];
            (batch, jobs) = BatchPlanner.Plan(manifest, provider, storageRoot, $"{batch.Name}-{suffix}");
            existing = await store.FindBatchAsync(batch.Name, ct);
        }

        if (existing is not null && existing.Provider != provider)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration,
                $"Batch '{existing.Name}' was started with provider '{existing.Provider}'; rerun with --provider {existing.Provider}, or pass --name to start a new batch.");
        }

        return await store.ImportBatchAsync(batch, jobs, ct);
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

using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using QwenBatch.Batches;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Cli.Commands;

/// <summary>
/// <c>qwenbatch retry &lt;batch&gt;</c>: requeues failed, cancelled and held jobs with fresh attempts; <c>--budget</c> raises
/// the batch budget first (the same rule as a rerun with a larger budget).
/// </summary>
internal static class RetryCommand
{
    public static Command Create()
    {
        var batch = CommonOptions.Batch();
        var failedOnly = new Option<bool>("--failed-only") { Description = "Requeue only failed and cancelled jobs." };
        var heldOnly = new Option<bool>("--held-only") { Description = "Requeue only jobs held over budget." };
        var budget = CommonOptions.Budget();
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("retry", "Requeue a batch's failed, cancelled and held jobs; a worker, or a rerun of 'qwenbatch run', processes them.\n"
            + ExitCodes.Help("requeued", new CommandExit(ExitCodes.UsageOrConfiguration, "no such batch")))
        {
            batch, failedOnly, heldOnly, budget, database, verbose,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(failedOnly) && result.GetValue(heldOnly))
            {
                result.AddError("--failed-only and --held-only cannot be used together; without either, both kinds are requeued.");
            }
        });
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            configuration => ExecuteAsync(configuration, parse.GetValue(batch)!, States(parse.GetValue(failedOnly), parse.GetValue(heldOnly)), parse.GetValue(budget), ct)));
        return command;
    }

    private static EditState[] States(bool failedOnly, bool heldOnly) =>
        failedOnly ? [EditState.Failed, EditState.Cancelled]
        : heldOnly ? [EditState.Held]
        : [EditState.Failed, EditState.Cancelled, EditState.Held];

    private static async Task<int> ExecuteAsync(IConfiguration configuration, string name, EditState[] states, decimal? budget, CancellationToken ct)
    {
        await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
        var batch = await BatchLookup.FindAsync(runtime.Store, name, ct);
        if (budget is { } usd)
        {
            // A resume of the same batch with no new jobs and a budget: the store sets it and releases the held jobs,
            // exactly as a rerun of 'run --budget' does.
            var heldBefore = (await runtime.Store.GetProgressAsync(batch.Id, ct)).Count(EditState.Held);
            var raised = await runtime.Store.ImportBatchAsync(new NewBatch(batch.Name, batch.Source, batch.Provider, batch.StorageDir, usd), Array.Empty<NewEdit>(), ct);
            var released = heldBefore - (await runtime.Store.GetProgressAsync(batch.Id, ct)).Count(EditState.Held);
            await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"Batch {batch.Id} '{batch.Name}': budget set to ${usd:0.00##}; {released} held job(s) released."));
            batch = raised.Batch;
        }

        var requeued = await runtime.Edits.RequeueBatchAsync(batch.Id, states, ct);
        await Console.Out.WriteLineAsync(
            $"Batch {batch.Id} '{batch.Name}': requeued {requeued} job(s) ({string.Join(", ", states.Select(s => s.ToDbName()))}); "
            + "'qwenbatch worker' or a rerun of 'qwenbatch run' processes them.");
        return ExitCodes.Success;
    }
}

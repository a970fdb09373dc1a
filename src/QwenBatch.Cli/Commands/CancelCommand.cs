using System.CommandLine;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Hosting;

namespace QwenBatch.Cli.Commands;

/// <summary>
/// <c>qwenbatch cancel &lt;batch&gt;</c>: stops new submits at once and has the provider cancel every task in flight. It only
/// writes to the store, so it works from any process: the worker (or <c>run</c>) holding the batch sends the cancels.
/// </summary>
internal static class CancelCommand
{
    public static Command Create()
    {
        var batch = CommonOptions.Batch();
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("cancel", "Cancel a batch: jobs not yet submitted end cancelled at once; tasks at the provider are cancelled there "
            + "by the process running the batch. 'qwenbatch retry' requeues them.\n" + ExitCodes.Help("cancel recorded", new CommandExit(ExitCodes.UsageOrConfiguration, "no such batch")))
        {
            batch, database, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            configuration => ExecuteAsync(configuration, parse.GetValue(batch)!, ct)));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, string name, CancellationToken ct)
    {
        await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
        var batch = await BatchLookup.FindAsync(runtime.Store, name, ct);
        var count = await runtime.Edits.CancelBatchAsync(batch.Id, ct);
        await Console.Out.WriteLineAsync(count == 0
            ? $"Batch {batch.Id} '{batch.Name}': nothing left to cancel."
            : $"Batch {batch.Id} '{batch.Name}': cancel recorded for {count} job(s); no new submits, tasks at the provider are cancelled there.");
        if ((await runtime.Store.GetProgressAsync(batch.Id, ct)).IsSettled && await runtime.ContinueAsync(batch.Id, ct) is { } fired)
        {
            // Nothing was at a provider, so the cancel ended the batch here: its continuation fires now rather than when a
            // worker looks (there may be none). With tasks at a provider, whoever ends the batch fires it.
            await Console.Out.WriteLineAsync($"Continuation: {fired}");
        }

        return ExitCodes.Success;
    }
}

using System.CommandLine;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Hosting;
using QwenBatch.Hangfire.Hosting;

namespace QwenBatch.Cli.Commands;

/// <summary><c>qwenbatch worker</c>: a Hangfire server that runs the edits of every batch in the store until stopped.</summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("worker", "Run jobs of every batch in the store until stopped (Ctrl-C or SIGTERM); a fleet shares one --database.\n"
            + ExitCodes.Help("stopped cleanly", ExitCodes.UsageOrConfiguration)) { database, verbose };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            ExecuteAsync));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration)
    {
        using var shutdown = new ShutdownSignal();
        Runtime runtime;
        try
        {
            runtime = await Runtime.StartAsync(configuration, withSimulator: false, shutdown.Token);
        }
        catch (OperationCanceledException) when (shutdown.Requested)
        {
            // Stopped while still opening or migrating the store: nothing was claimed, so stopping is clean.
            return ExitCodes.Success;
        }

        await using (runtime)
        {
            await using var metrics = await MetricsHost.StartAsync(configuration, runtime, shutdown.Token);
            var server = await runtime.StartEngineAsync(EngineScope.Everything, shutdown.Token);
            try
            {
                await Task.Delay(Timeout.Infinite, shutdown.Token);
            }
            catch (OperationCanceledException)
            {
                // Stopping is not losing: steps under way get the grace period to record what they did.
            }

            await EditServer.StopAsync(server);
        }

        return ExitCodes.Success;
    }
}

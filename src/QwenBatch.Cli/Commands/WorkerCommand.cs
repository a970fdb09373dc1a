using System.CommandLine;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Hosting;
using QwenBatch.Server;

namespace QwenBatch.Cli.Commands;

/// <summary><c>qwenbatch worker</c>: a worker process that runs jobs of every batch in the store until stopped.</summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("worker", "Run jobs of every batch in the store until stopped (Ctrl-C or SIGTERM); a fleet shares one --database.\n"
            + "Exit codes: 0 stopped cleanly; 1 usage or configuration error.") { database, verbose };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            ExecuteAsync));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration)
    {
        using var shutdown = new ShutdownSignal();
        try
        {
            await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, shutdown.Token);
            await runtime.Server.RunAsync(ServerScope.Everything, shutdown.Token);
        }
        catch (OperationCanceledException) when (shutdown.Token.IsCancellationRequested)
        {
            // Told to stop while still starting (migrating, registering): nothing was taken, so this is a clean stop. A
            // fleet whose batch finishes before a late worker is up stops that worker here.
        }

        return ExitCodes.Success;
    }
}

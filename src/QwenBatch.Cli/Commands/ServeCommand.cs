using System.CommandLine;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Hosting;
using QwenBatch.Hangfire.Hosting;

namespace QwenBatch.Cli.Commands;

/// <summary><c>qwenbatch serve</c>: a Hangfire server, Hangfire's dashboard at /hangfire with QwenBatch's pages, the REST API at /api and /healthz in one process.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var database = CommonOptions.Database();
        var storage = CommonOptions.Storage();
        var verbose = CommonOptions.Verbose();
        var urls = new Option<string>("--urls") { Description = "Where to listen (semicolon-separated).", DefaultValueFactory = _ => "http://127.0.0.1:5000" };
        var noWorker = new Option<bool>("--no-worker") { Description = "Serve the dashboard and API only (a replica); run no jobs." };
        var command = new Command("serve", "Run a worker, the Hangfire dashboard (/hangfire), the REST API (/api) and /healthz until stopped.\n"
            + "Only local requests are answered unless Dashboard:ApiToken or Dashboard:User/Password are configured.\n"
            + ExitCodes.Help("stopped (Ctrl-C or SIGTERM)", new CommandExit(ExitCodes.UsageOrConfiguration, "the address is in use")))
        {
            database, storage, urls, noWorker, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(parse.GetValue(storage), parse.GetValue(database), parse.GetValue(verbose)),
            configuration => ExecuteAsync(configuration, parse.GetValue(urls)!, !parse.GetValue(noWorker))));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, string urls, bool withWorker)
    {
        using var shutdown = new ShutdownSignal();
        Runtime runtime;
        try
        {
            runtime = await Runtime.StartAsync(configuration, withSimulator: false, shutdown.Token);
        }
        catch (OperationCanceledException) when (shutdown.Requested)
        {
            // Stopped while still opening or migrating the store: nothing was claimed or served, so stopping is clean.
            return ExitCodes.Success;
        }

        await using var started = runtime;

        // The web host first: an address it cannot listen on is the user's to fix, and is said before any worker starts.
        await using var app = await ServeHost.StartAsync(configuration, runtime, urls, shutdown.Token);
        var server = withWorker ? await runtime.StartEngineAsync(EngineScope.Everything, shutdown.Token) : null;
        await Console.Error.WriteLineAsync($"Dashboard at {string.Join(", ", app.Urls.Select(u => u.TrimEnd('/') + "/hangfire/batches"))}{(withWorker ? "" : " (no worker)")}");
        try
        {
            await Task.Delay(Timeout.Infinite, shutdown.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await app.StopAsync(CancellationToken.None);
        if (server is not null)
        {
            await EditServer.StopAsync(server);
        }

        return ExitCodes.Success;
    }
}

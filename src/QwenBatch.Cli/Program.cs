using System.CommandLine;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Commands;
using QwenBatch.Cli.Hosting;
using Serilog;

namespace QwenBatch.Cli;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("QwenBatch: durable bulk image edits with Qwen Image Edit Plus.\n" + ExitCodes.Help)
        {
            RunCommand.Create(),
            ValidateCommand.Create(),
            WorkerCommand.Create(),
            SimulateCommand.Create(),
            ReportCommand.Create(),
        };

        // Ctrl-C is ours to handle (stop taking work, record what is in flight), not the parser's.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null };
        return await root.Parse(args).InvokeAsync(invocation);
    }

    /// <summary>
    /// Runs a command body with configuration and logging set up, turning expected failures into their exit code and a
    /// one-line message, and anything unexpected into a logged fatal error — never a stack trace on the console.
    /// </summary>
    public static async Task<int> RunGuardedAsync(IReadOnlyDictionary<string, string?> overrides, Func<IConfiguration, Task<int>> body)
    {
        var configuration = AppConfiguration.Build(overrides);
        Log.Logger = new LoggerConfiguration().ReadFrom.Configuration(configuration).CreateLogger();
        try
        {
            return await body(configuration);
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync(ex.Message);
            return ex.ExitCode;
        }
        catch (Exception ex)
        {
            // The details go to the debug log (--verbose); the console gets one line, never a stack trace.
            Log.Debug(ex, "Unhandled exception");
            Log.Fatal("QwenBatch stopped unexpectedly: {Error}", ex.Message);
            return ExitCodes.UsageOrConfiguration;
        }
        finally
        {
            await Log.CloseAndFlushAsync();
        }
    }
}

using System.CommandLine;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Commands;
using QwenBatch.Cli.Hosting;
using QwenBatch.Cli.Logging;
using Serilog;

namespace QwenBatch.Cli;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("QwenBatch: durable bulk image edits with Qwen Image Edit Plus.\n" + ExitCodes.All)
        {
            RunCommand.Create(),
            SubmitCommand.Create(),
            ValidateCommand.Create(),
            WorkerCommand.Create(),
            StatusCommand.Create(),
            CancelCommand.Create(),
            RetryCommand.Create(),
            ServeCommand.Create(),
            SimulateCommand.Create(),
            ReportCommand.Create(),
            HealthCheckCommand.Create(),
            ScheduleCommand.Create(),
        };

        // Ctrl-C is ours to handle (stop taking work, record what is in flight), not the parser's.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            return await UsageError.PrintAsync(parse);
        }

        return await parse.InvokeAsync(invocation);
    }

    /// <summary>
    /// Runs a command body with configuration and logging set up, turning expected failures into their exit code and a
    /// one-line message, and anything unexpected into a logged fatal error — never a stack trace on the console.
    /// </summary>
    public static async Task<int> RunGuardedAsync(IReadOnlyDictionary<string, string?> overrides, Func<IConfiguration, Task<int>> body)
    {
        var configuration = AppConfiguration.Build(overrides);
        var redactor = ConfiguredSecrets.From(configuration);
        Log.Logger = LoggingSetup.Create(configuration, redactor);
        try
        {
            return await body(configuration);
        }
        catch (CliException ex)
        {
            await Console.Error.WriteLineAsync(redactor.Redact(ex.Message));
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

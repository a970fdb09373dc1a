using System.CommandLine;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Hosting;
using QwenBatch.Reports;

namespace QwenBatch.Cli.Commands;

/// <summary>
/// <c>qwenbatch report &lt;batch&gt;</c>: writes the batch's reports (report.csv and errors.csv, report.json, report.html)
/// into its folder from the store, so any process that can reach the store can produce them, at any time.
/// </summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var batch = new Argument<string>("batch") { Description = "The batch name (as 'run' printed it)." };
        var format = new Option<string[]>("--format")
        {
            Description = "Which report(s) to write: csv (report.csv and errors.csv), json or html. Default: all.",
            AllowMultipleArgumentsPerToken = true,
        }.AcceptOnlyFromAmong("csv", "json", "html");
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("report", "Write a batch's reports into its folder from the store.\n"
            + ExitCodes.Help("reports written", new CommandExit(ExitCodes.UsageOrConfiguration, "no such batch")))
        {
            batch, format, database, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            configuration => ExecuteAsync(configuration, parse.GetValue(batch)!, Formats(parse.GetValue(format)), ct)));
        return command;
    }

    private static ReportFormats Formats(string[]? names) =>
        names is not { Length: > 0 }
            ? ReportFormats.All
            : names.Aggregate(ReportFormats.None, (all, name) => all | name switch
            {
                "csv" => ReportFormats.Csv,
                "json" => ReportFormats.Json,
                _ => ReportFormats.Html,
            });

    private static async Task<int> ExecuteAsync(IConfiguration configuration, string name, ReportFormats formats, CancellationToken ct)
    {
        await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
        var batch = await runtime.Store.FindBatchAsync(name, ct)
            ?? throw new CliException(ExitCodes.UsageOrConfiguration, $"No batch named '{name}' in the store; 'qwenbatch status' lists the batches.");
        foreach (var path in await BatchReports.WriteAsync(runtime.Store, batch, formats, TimeProvider.System, ct))
        {
            Console.WriteLine(path);
        }

        return ExitCodes.Success;
    }
}

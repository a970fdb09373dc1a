using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using QwenBatch.Batches;
using QwenBatch.Cli.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Edits;
using QwenBatch.Reports;
using QwenBatch.Storage;
using Spectre.Console;

namespace QwenBatch.Cli.Commands;

/// <summary><c>qwenbatch status [batch]</c>: every batch as a table, or one batch's counts by state, spend and ETA.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var batch = new Argument<string?>("batch") { Description = "One batch, by id or name; without it, every batch.", Arity = ArgumentArity.ZeroOrOne };
        var json = new Option<bool>("--json")
        {
            Description = "Print JSON: {\"batch\", \"name\", \"done\", \"total\", \"counts\": {\"succeeded\", \"failed\", \"cancelled\", \"held\", …}, \"spent_usd\", …}, "
                + "or {\"batches\": [ … ]} without a batch.",
        };
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("status", "Show the batches in the store, or one batch: jobs by state, spend, budget and ETA.\n"
            + ExitCodes.Help("shown", new CommandExit(ExitCodes.UsageOrConfiguration, "no such batch")))
        {
            batch, json, database, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            configuration => ExecuteAsync(configuration, parse.GetValue(batch), parse.GetValue(json), ct)));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, string? name, bool json, CancellationToken ct)
    {
        await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
        var now = runtime.Time.GetUtcNow();
        if (name is not null)
        {
            var one = await SummarizeAsync(runtime.Store, await BatchLookup.FindAsync(runtime.Store, name, ct), now, ct);
            if (json)
            {
                await Console.Out.WriteLineAsync(JsonSerializer.Serialize(BatchJson.From(one), CliJson.Options));
            }
            else
            {
                Terminal.Out.Write(Detail(one));
            }

            return ExitCodes.Success;
        }

        var all = new List<BatchSummary>();
        foreach (var record in await runtime.Store.GetBatchesAsync(ct))
        {
            all.Add(await SummarizeAsync(runtime.Store, record, now, ct));
        }

        if (json)
        {
            await Console.Out.WriteLineAsync(JsonSerializer.Serialize(new { Batches = all.Select(BatchJson.From) }, CliJson.Options));
        }
        else if (all.Count == 0)
        {
            await Console.Out.WriteLineAsync("No batches yet; 'qwenbatch run <manifest>' or 'qwenbatch submit <manifest>' starts one.");
        }
        else
        {
            Terminal.Out.Write(List(all));
        }

        return ExitCodes.Success;
    }

    private static async Task<BatchSummary> SummarizeAsync(IBatchStore store, QwenBatch.Batches.BatchRecord batch, DateTimeOffset now, CancellationToken ct)
    {
        var progress = await store.GetProgressAsync(batch.Id, ct);
        var eta = progress.IsSettled ? TimeSpan.Zero : BatchEta.Estimate(progress, await store.GetFirstSubmitAsync(batch.Id, ct), now);
        return new BatchSummary(batch, progress, eta);
    }

    private static Table List(IEnumerable<BatchSummary> batches)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("Id", "Name", "Provider", "State", "Jobs", "Succeeded", "Failed", "Held", "In flight", "Spent", "Budget", "ETA", "Created");
        foreach (var column in table.Columns.Skip(4).Take(6))
        {
            column.RightAligned();
        }

        foreach (var s in batches)
        {
            var p = s.Progress;
            table.AddRow(
                Cell(s.Batch.Id), Markup.Escape(s.Batch.Name), Markup.Escape(s.Batch.Provider), StateMarkup(s),
                Cell(p.Total), Cell(p.Count(EditState.Succeeded)), Cell(p.Count(EditState.Failed) + p.Count(EditState.Cancelled)),
                Cell(p.Count(EditState.Held)), Cell(s.InFlight), Usd(p.SpentUsd), s.Batch.BudgetUsd is { } b ? Usd(b) : "–",
                s.Done ? "–" : BatchEta.Format(s.Eta), s.Batch.CreatedAt.ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture));
        }

        return table;
    }

    private static Table Detail(BatchSummary s)
    {
        var p = s.Progress;
        var table = new Table().Border(TableBorder.Rounded).AddColumns("Batch", Markup.Escape($"{s.Batch.Name} (id {s.Batch.Id})"));
        table.AddRow("State", StateMarkup(s));
        table.AddRow("Provider", Markup.Escape(s.Batch.Provider));
        table.AddRow("Outputs", Markup.Escape(s.Batch.StorageDir));
        table.AddRow("Jobs", Cell(p.Total));
        foreach (var state in Enum.GetValues<EditState>())
        {
            table.AddRow($"  {state.ToDbName()}", Cell(p.Count(state)));
        }

        table.AddRow("Spent", Usd(p.SpentUsd));
        table.AddRow("Reserved", Usd(s.Batch.ReservedUsd));
        table.AddRow("Budget", s.Batch.BudgetUsd is { } b ? Usd(b) : "none");
        table.AddRow("ETA", s.Done ? "done" : BatchEta.Format(s.Eta));
        if (s.Batch.Failure is { } failure)
        {
            table.AddRow("[red]Errors[/]", Markup.Escape(failure));
        }

        return table;
    }

    private static string StateMarkup(BatchSummary s) => s.StateText switch
    {
        "succeeded" => "[green]succeeded[/]",
        "running" => "[blue]running[/]",
        "failed" => "[red]failed[/]",
        var other => $"[yellow]{Markup.Escape(other)}[/]",
    };

    private static string Cell(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Usd(decimal value) => Money.Usd(value);
}

/// <summary>The documented JSON of one batch in <c>status --json</c>.</summary>
internal sealed record BatchJson(
    string Batch, string Name, string Provider, string State, bool Done, int Total, int InFlight,
    IReadOnlyDictionary<string, int> Counts, decimal SpentUsd, decimal ReservedUsd, decimal? BudgetUsd,
    double? EtaSeconds, bool CancelRequested, string Storage, DateTimeOffset CreatedAt, string? Error)
{
    public static BatchJson From(BatchSummary s) => new(
        s.Batch.Id.ToString(CultureInfo.InvariantCulture), s.Batch.Name, s.Batch.Provider, s.StateText, s.Done, s.Progress.Total, s.InFlight,
        Enum.GetValues<EditState>().ToDictionary(state => state.ToDbName(), s.Progress.Count),
        s.Progress.SpentUsd, s.Batch.ReservedUsd, s.Batch.BudgetUsd, s.Eta?.TotalSeconds, s.Batch.CancelRequestedAt is not null,
        s.Batch.StorageDir, s.Batch.CreatedAt, s.Batch.Failure);
}

using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using QwenBatch.Cli.Hosting;
using QwenBatch.Hangfire.Schedules;
using QwenBatch.Schedules;

namespace QwenBatch.Cli.Commands;

/// <summary>
/// <c>qwenbatch schedule add|list|remove|pause|resume|trigger</c>: recurring batches, each a Hangfire recurring job with its
/// cron expression and time zone. The definitions live in the store; on PostgreSQL the commands register the recurring
/// job in the fleet's Hangfire storage at once, and every server keeps them in step (on the embedded store a running
/// worker picks a change up within half a minute).
/// </summary>
internal static class ScheduleCommand
{
    private static readonly CommandExit NoSuchSchedule = new(ExitCodes.UsageOrConfiguration, "no such schedule");

    public static Command Create() => new("schedule", "Recurring batches: a manifest read afresh at each occurrence of a 5-field cron expression "
        + "in a time zone, fired by Hangfire in the workers ('qwenbatch worker' or 'serve'). Only 'trigger' exits 2.\n"
        + ExitCodes.Help("done", NoSuchSchedule, ExitCodes.InvalidManifest))
    {
        Add(), List(), Simple("remove", "Remove a schedule and its run records (its batches stay).", "removed", RemoveAsync),
        Simple("pause", "Pause a schedule; occurrences while paused are not caught up.", "paused", (r, n, ct) => PauseAsync(r, n, true, ct)),
        Simple("resume", "Resume a paused schedule from its next occurrence.", "resumed", (r, n, ct) => PauseAsync(r, n, false, ct)),
        Simple("trigger", "Run a schedule's manifest now, as an occurrence at the current minute.", "batch enqueued", TriggerAsync, ExitCodes.InvalidManifest),
    };

    private static Command Add()
    {
        var name = new Argument<string>("name") { Description = "The schedule's name; occurrences make batches <name>-<yyyyMMdd-HHmm>." };
        var cron = new Option<string>("--cron") { Description = "5-field cron: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\".", Required = true };
        var tz = new Option<string>("--tz") { Description = "IANA time zone the cron is read in, e.g. Europe/Berlin.", DefaultValueFactory = _ => "UTC" };
        var manifest = new Option<string>("--manifest") { Description = "The manifest, read when each occurrence fires.", Required = true };
        var catchUp = new Option<string>("--catch-up") { Description = "After downtime: once (run the latest missed occurrence once) or skip.", DefaultValueFactory = _ => "once" }
            .AcceptOnlyFromAmong("once", "skip");
        var provider = CommonOptions.Provider();
        var budget = CommonOptions.Budget();
        var storage = CommonOptions.Storage();
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("add", "Add a schedule.\n" + ExitCodes.Help("added", ExitCodes.UsageOrConfiguration)) { name, cron, tz, manifest, catchUp, provider, budget, storage, database, verbose };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(parse.GetValue(storage), parse.GetValue(database), parse.GetValue(verbose)),
            async configuration =>
            {
                var definition = new ScheduleDefinition(parse.GetValue(name)!, parse.GetValue(cron)!, parse.GetValue(tz)!,
                    Path.GetFullPath(parse.GetValue(manifest)!), parse.GetValue(provider) ?? Providers.ProviderNames.Simulator,
                    Path.GetFullPath(CommonOptions.StorageRoot(configuration)), parse.GetValue(budget), CatchUpPolicies.Parse(parse.GetValue(catchUp)!));
                return await AddAsync(configuration, definition, ct);
            }));
        return command;
    }

    private static async Task<int> AddAsync(IConfiguration configuration, ScheduleDefinition definition, CancellationToken ct)
    {
        DateTimeOffset? next;
        try
        {
            next = RecurringSchedules.Next(definition, TimeProvider.System.GetUtcNow());
        }
        catch (FormatException ex)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, ex.Message);
        }

        if (next is null)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, $"Cron expression '{definition.Cron}' never matches a date.");
        }

        await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
        if (!await runtime.Store.AddScheduleAsync(definition, ct))
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, $"A schedule named '{definition.Name}' exists; remove it first or pick another name.");
        }

        Registered(runtime, r => r.Register(definition));
        if (!File.Exists(definition.Manifest))
        {
            await Console.Error.WriteLineAsync($"warning: {definition.Manifest} does not exist yet; an occurrence fails unless it exists when it fires.");
        }

        var zone = TimeZoneInfo.FindSystemTimeZoneById(definition.TimeZone);
        await Console.Out.WriteLineAsync($"Schedule '{definition.Name}' added; next run {Iso(next.Value)} ({TimeZoneInfo.ConvertTime(next.Value, zone):yyyy-MM-dd HH:mm} {definition.TimeZone}).");
        return ExitCodes.Success;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON for scripts." };
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command("list", "List schedules: next run (UTC), last run, last error, paused.\n" + ExitCodes.Help("listed", ExitCodes.UsageOrConfiguration)) { json, database, verbose };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            configuration => ListAsync(configuration, parse.GetValue(json), ct)));
        return command;
    }

    private static async Task<int> ListAsync(IConfiguration configuration, bool json, CancellationToken ct)
    {
        await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
        var schedules = await runtime.Store.GetSchedulesAsync(ct);
        if (json)
        {
            var rows = schedules.Select(s => new ScheduleRow(s.Name, s.Definition.Cron, s.Definition.TimeZone, Next(s),
                s.LastRunAt is { } last ? Iso(last) : null, s.LastBatch, s.LastError, s.Paused, s.Definition.Manifest, s.Definition.CatchUp.ToDbName()));
            await Console.Out.WriteLineAsync(JsonSerializer.Serialize(rows, CliJson.Options));
            return ExitCodes.Success;
        }

        if (schedules.Count == 0)
        {
            await Console.Out.WriteLineAsync("No schedules. Add one with 'qwenbatch schedule add <name> --cron \"0 2 * * *\" --tz Europe/Berlin --manifest <path>'.");
        }

        foreach (var s in schedules)
        {
            await Console.Out.WriteLineAsync(
                $"{s.Name,-20} {s.Definition.Cron,-15} {s.Definition.TimeZone,-18} next {Next(s) ?? "-"}  last {(s.LastRunAt is { } l ? Iso(l) : "-")}"
                + (s.Paused ? "  PAUSED" : "") + (s.LastError is { } e ? $"  last error: {e}" : ""));
        }

        return ExitCodes.Success;
    }

    private static Command Simple(string verb, string description, string success, Func<Runtime, string, CancellationToken, Task<int>> body, params CommandExit[] more)
    {
        var name = new Argument<string>("name") { Description = "The schedule's name." };
        var database = CommonOptions.Database();
        var verbose = CommonOptions.Verbose();
        var command = new Command(verb, description + "\n" + ExitCodes.Help(success, [NoSuchSchedule, .. more])) { name, database, verbose };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, parse.GetValue(database), parse.GetValue(verbose)),
            async configuration =>
            {
                await using var runtime = await Runtime.StartAsync(configuration, withSimulator: false, ct);
                return await body(runtime, parse.GetValue(name)!, ct);
            }));
        return command;
    }

    private static async Task<int> RemoveAsync(Runtime runtime, string name, CancellationToken ct)
    {
        Found(await runtime.Store.RemoveScheduleAsync(name, ct), name);
        Registered(runtime, r => r.Unregister(name));
        await Console.Out.WriteLineAsync($"Schedule '{name}' removed.");
        return ExitCodes.Success;
    }

    private static async Task<int> PauseAsync(Runtime runtime, string name, bool paused, CancellationToken ct)
    {
        var schedule = await FindAsync(runtime, name, ct);
        Found(await runtime.Store.SetSchedulePausedAsync(name, paused, ct), name);
        Registered(runtime, r =>
        {
            if (paused)
            {
                r.Unregister(name);
            }
            else
            {
                r.Register(schedule.Definition);
            }
        });
        await Console.Out.WriteLineAsync(paused ? $"Schedule '{name}' paused." : $"Schedule '{name}' resumed; next run {Next(schedule with { Paused = false })}.");
        return ExitCodes.Success;
    }

    private static async Task<int> TriggerAsync(Runtime runtime, string name, CancellationToken ct)
    {
        var schedule = await FindAsync(runtime, name, ct);
        var outcome = await runtime.Schedules.TriggerAsync(schedule.Definition, ct);
        if (outcome.Error is { } error)
        {
            throw new CliException(ExitCodes.InvalidManifest, $"Schedule '{name}' failed (failed batch '{outcome.BatchName}' carries the errors): {error}");
        }

        await Console.Out.WriteLineAsync($"Schedule '{name}' triggered: batch '{outcome.BatchName}' enqueued; a worker runs it.");
        return ExitCodes.Success;
    }

    /// <summary>
    /// On PostgreSQL the fleet's Hangfire storage takes the change at once; on the embedded store Hangfire lives in a
    /// worker's memory, and the worker's registrar takes the change from the store.
    /// </summary>
    private static void Registered(Runtime runtime, Action<RecurringSchedules> change)
    {
        if (!runtime.Embedded)
        {
            change(runtime.Services.GetRequiredService<RecurringSchedules>());
        }
    }

    /// <summary>The next occurrence (UTC), as Hangfire computes it; null when paused.</summary>
    private static string? Next(ScheduleRecord schedule) =>
        schedule.Paused || RecurringSchedules.Next(schedule.Definition, TimeProvider.System.GetUtcNow()) is not { } next ? null : Iso(next);

    private static async Task<ScheduleRecord> FindAsync(Runtime runtime, string name, CancellationToken ct) =>
        (await runtime.Store.GetSchedulesAsync(ct)).SingleOrDefault(s => s.Name == name)
        ?? throw new CliException(ExitCodes.UsageOrConfiguration, $"No schedule named '{name}'; 'qwenbatch schedule list' shows them.");

    private static void Found(bool found, string name)
    {
        if (!found)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, $"No schedule named '{name}'; 'qwenbatch schedule list' shows them.");
        }
    }

    private static string Iso(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private sealed record ScheduleRow(
        string Name, string Cron, string Tz, string? Next, string? LastRun, string? LastBatch, string? LastError, bool Paused, string Manifest, string CatchUp);
}

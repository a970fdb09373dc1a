using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using QwenBatch.Schedules;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>
/// Recurring schedules: cron, zone, the next run in UTC and in the schedule's own zone, the last run with its batch, and
/// the "trigger now" and pause/resume forms (antiforgery-checked like every dashboard form).
/// </summary>
internal static class SchedulesPage
{
    public static void Map(RouteGroupBuilder pages, RouteGroupBuilder forms)
    {
        pages.MapGet("/schedules", RenderAsync);
        forms.MapPost("/schedules/{name}/trigger", TriggerAsync);
        forms.MapPost("/schedules/{name}/pause", (string name, IJobStore store, TimeProvider time, CancellationToken ct) => SetPausedAsync(name, true, store, time, ct));
        forms.MapPost("/schedules/{name}/resume", (string name, IJobStore store, TimeProvider time, CancellationToken ct) => SetPausedAsync(name, false, store, time, ct));
    }

    public static async Task<IResult> RenderAsync(HttpContext context, IJobStore store, string? message, CancellationToken ct)
    {
        var schedules = await store.GetSchedulesAsync(ct);
        var body = new StringBuilder();
        if (message is { Length: > 0 })
        {
            body.Append("<p id=\"message\">").Append(E(message)).Append("</p>");
        }

        if (schedules.Count == 0)
        {
            body.Append("<p>No schedules. Add one with <code>qwenbatch schedule add &lt;name&gt; --cron \"0 2 * * *\" --tz Europe/Berlin --manifest &lt;path&gt;</code>.</p>");
            return Page("Schedules", body.ToString());
        }

        body.Append("<table><tr><th>Schedule</th><th>Cron</th><th>Time zone</th><th>Next run</th><th>Last run</th><th>State</th><th></th></tr>");
        foreach (var schedule in schedules)
        {
            var name = schedule.Name;
            var path = $"/dashboard/schedules/{Uri.EscapeDataString(name)}";
            body.Append(CultureInfo.InvariantCulture, $"<tr data-schedule=\"{E(name)}\"><td>{E(name)}</td><td><code>{E(schedule.Definition.Cron)}</code></td><td>{E(schedule.Definition.TimeZone)}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td class=\"next\">{(schedule.Paused ? "—" : $"{Iso(schedule.NextAt)}<br>{E(Local(schedule, schedule.NextAt))}")}</td>")
                .Append("<td class=\"last\">").Append(await LastRunAsync(store, schedule, ct)).Append("</td>")
                .Append(CultureInfo.InvariantCulture, $"<td class=\"state\">{(schedule.Paused ? "<b>paused</b>" : "active")}</td><td>")
                .Append(Form(context, $"{path}/trigger", "Trigger now", "trigger"))
                .Append(schedule.Paused ? Form(context, $"{path}/resume", "Resume", "resume") : Form(context, $"{path}/pause", "Pause", "pause"))
                .Append("</td></tr>");
        }

        return Page("Schedules", body.Append("</table>").ToString());
    }

    private static async Task<IResult> TriggerAsync(string name, IJobStore store, ScheduleRunner runner, CancellationToken ct)
    {
        if ((await store.GetSchedulesAsync(ct)).SingleOrDefault(s => s.Name == name) is not { } schedule)
        {
            return Results.NotFound();
        }

        // Runs here, like 'qwenbatch schedule trigger': the occurrence is claimed at the current minute, so a second click
        // (or another replica) in the same minute makes no second batch.
        var outcome = await runner.TriggerAsync(schedule, $"dashboard:{Environment.MachineName}:{Environment.ProcessId}", ct);
        var message = outcome switch
        {
            null => $"Schedule '{name}' already ran this minute; nothing was enqueued.",
            { Error: { } error } => $"Schedule '{name}' failed: {error}",
            _ => $"Schedule '{name}' triggered: batch '{outcome.BatchName}' enqueued; a worker runs it.",
        };
        return Results.Redirect($"/dashboard/schedules?message={Uri.EscapeDataString(message)}");
    }

    private static async Task<IResult> SetPausedAsync(string name, bool paused, IJobStore store, TimeProvider time, CancellationToken ct)
    {
        if ((await store.GetSchedulesAsync(ct)).SingleOrDefault(s => s.Name == name) is not { } schedule)
        {
            return Results.NotFound();
        }

        // A resume starts from the next occurrence after now, so the paused time is not caught up (as the CLI does it).
        var next = CronSchedule.Parse(schedule.Definition.Cron, schedule.Definition.TimeZone).NextAfter(time.GetUtcNow()) ?? schedule.NextAt;
        await store.SetSchedulePausedAsync(name, paused, next, ct);
        return Results.Redirect("/dashboard/schedules");
    }

    private static async Task<string> LastRunAsync(IJobStore store, ScheduleRecord schedule, CancellationToken ct)
    {
        if (schedule.LastRunAt is not { } at)
        {
            return "never";
        }

        var html = new StringBuilder(Iso(at));
        if (schedule.LastBatch is { } name)
        {
            html.Append("<br>");
            html.Append(await store.FindBatchAsync(name, ct) is { } batch
                ? string.Create(CultureInfo.InvariantCulture, $"<a href=\"/dashboard/batches/{batch.Id}\">{E(name)}</a>")
                : $"{E(name)} (deleted)");
        }

        if (schedule.LastError is { } error)
        {
            html.Append("<br><span class=\"stale\">failed: ").Append(E(error)).Append("</span>");
        }

        return html.ToString();
    }

    private static string Iso(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Local(ScheduleRecord schedule, DateTimeOffset at)
    {
        try
        {
            var local = CronSchedule.Parse(schedule.Definition.Cron, schedule.Definition.TimeZone).Local(at);
            return $"{local.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} {schedule.Definition.TimeZone}";
        }
        catch (Exception ex) when (ex is FormatException or TimeZoneNotFoundException)
        {
            return "";
        }
    }
}

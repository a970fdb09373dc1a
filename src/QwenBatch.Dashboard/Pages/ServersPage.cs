using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using QwenBatch.Edits;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>
/// Every worker with its heartbeat and the jobs it holds now. A server whose heartbeat is older than the stale limit is
/// marked as having stopped answering; the rescuer returns its jobs when their leases expire and records it in their
/// history, so the page shows how many jobs were rescued from each server, when, and which (newest first).
/// </summary>
internal static class ServersPage
{
    public const int RescuesShown = 50;
    private const int JobsInHandShown = 10;

    public static async Task<IResult> RenderAsync(HttpContext context, IJobStore store, TimeProvider time, DashboardOptions options, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var filter = context.Request.Query["server"].ToString() is { Length: > 0 } s ? s : null;
        var servers = await store.GetServersAsync(ct);
        var loads = (await store.GetServerLoadAsync(ct)).ToDictionary(l => l.ServerId, StringComparer.Ordinal);
        var rescues = await store.GetRescuesAsync(filter, RescuesShown, ct);

        var body = new StringBuilder("<table id=\"servers\"><tr><th>Server</th><th>Host</th><th>PID</th><th>Concurrency</th><th>Started</th><th>Last heartbeat</th><th>Jobs in hand</th><th>Rescued from it</th></tr>");
        foreach (var server in servers)
        {
            var stale = now - server.HeartbeatAt > options.StaleHeartbeat;
            body.Append(CultureInfo.InvariantCulture, $"<tr data-server=\"{E(server.Id)}\" class=\"{(stale ? "stopped" : "live")}\"><td>{E(server.Id)}</td><td>{E(server.Host)}</td><td>{server.ProcessId}</td><td>{server.Concurrency}</td><td>{Time(server.StartedAt)}</td>")
                .Append(stale
                    ? $"<td class=\"stale\">stopped answering at {Time(server.HeartbeatAt)} ({Ago(now - server.HeartbeatAt)} ago): its leases are rescued when they expire</td>"
                    : $"<td>{Time(server.HeartbeatAt)} ({Ago(now - server.HeartbeatAt)} ago)</td>");
            AppendLoad(body, loads.GetValueOrDefault(server.Id), server.Id);
            body.Append("</tr>");
        }

        // Servers gone from the registry (stopped, or cleaned away) that still hold leases or lost jobs to the rescuer.
        foreach (var load in loads.Values.Where(l => servers.All(s => s.Id != l.ServerId)))
        {
            body.Append(CultureInfo.InvariantCulture, $"<tr data-server=\"{E(load.ServerId)}\" class=\"gone\"><td>{E(load.ServerId)}</td><td colspan=\"5\" class=\"stale\">no longer registered</td>");
            AppendLoad(body, load, load.ServerId);
            body.Append("</tr>");
        }

        body.Append("</table><h2 id=\"rescues\">Rescued jobs").Append(filter is null ? "" : $" from {E(filter)} <a href=\"/dashboard/servers#rescues\">(all servers)</a>")
            .Append(CultureInfo.InvariantCulture, $"</h2><p>The newest {RescuesShown}: jobs whose lease expired while a server held them, returned to the queue by the rescuer.</p>")
            .Append("<table id=\"rescued\"><tr><th>At</th><th>Job</th><th>State then → now</th><th>Rescued from</th><th>Reason</th></tr>");
        foreach (var rescue in rescues)
        {
            body.Append(CultureInfo.InvariantCulture, $"<tr><td>{Time(rescue.At)}</td><td><a href=\"/dashboard/job/{rescue.JobId}\">{rescue.JobId}</a></td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{rescue.From?.ToDbName()} → {rescue.To.ToDbName()}</td><td>{E(rescue.ServerId)}</td><td>{E(rescue.Reason)}</td></tr>");
        }

        if (rescues.Count == 0)
        {
            body.Append("<tr><td colspan=\"5\">none</td></tr>");
        }

        return Page("Servers", body.Append("</table>").ToString());
    }

    private static void AppendLoad(StringBuilder body, ServerLoad? load, string serverId)
    {
        var held = load?.JobsInHand ?? [];
        body.Append(CultureInfo.InvariantCulture, $"<td class=\"in-hand\" data-count=\"{held.Count}\">{held.Count}");
        foreach (var id in held.Take(JobsInHandShown))
        {
            body.Append(CultureInfo.InvariantCulture, $" <a href=\"/dashboard/job/{id}\">{id}</a>");
        }

        body.Append(held.Count > JobsInHandShown ? " …" : "").Append("</td>");
        body.Append(CultureInfo.InvariantCulture, $"<td class=\"rescued\" data-count=\"{load?.Rescued ?? 0}\">");
        if (load is { Rescued: > 0 })
        {
            body.Append(CultureInfo.InvariantCulture, $"<a href=\"/dashboard/servers?server={Uri.EscapeDataString(serverId)}#rescues\">{load.Rescued} jobs</a>, last at {Time(load.LastRescueAt)}");
        }

        body.Append("</td>");
    }

    private static string Ago(TimeSpan span) =>
        span.TotalHours >= 1 ? $"{span.TotalHours:0.0} h" : span.TotalMinutes >= 1 ? $"{span.TotalMinutes:0} min" : $"{Math.Max(0, span.TotalSeconds):0} s";
}

using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>Every registered worker; one whose heartbeat is older than the stale limit is marked (the rescuer takes its jobs).</summary>
internal static class ServersPage
{
    public static async Task<IResult> RenderAsync(IJobStore store, TimeProvider time, DashboardOptions options, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var body = new StringBuilder("<table><tr><th>Server</th><th>Host</th><th>PID</th><th>Concurrency</th><th>Started</th><th>Last heartbeat</th></tr>");
        foreach (var server in await store.GetServersAsync(ct))
        {
            var stale = now - server.HeartbeatAt > options.StaleHeartbeat;
            body.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(server.Id)}</td><td>{E(server.Host)}</td><td>{server.ProcessId}</td><td>{server.Concurrency}</td><td>{Time(server.StartedAt)}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td class=\"{(stale ? "stale" : "")}\">{Time(server.HeartbeatAt)} ({(now - server.HeartbeatAt).TotalSeconds:0} s ago){(stale ? " — stale: its leases are rescued when they expire" : "")}</td></tr>");
        }

        return Page("Servers", body.Append("</table>").ToString());
    }
}

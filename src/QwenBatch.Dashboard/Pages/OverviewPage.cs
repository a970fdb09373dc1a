using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using QwenBatch.Edits;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>
/// The overview: edits by state and spend (from the counters) and the fleet's rate-limit rows. Jobs, servers, recurring
/// jobs and the realtime and history graphs are Hangfire's own dashboard's (<c>/hangfire</c>).
/// </summary>
internal static class OverviewPage
{
    public static async Task<IResult> RenderAsync(IStore store, TimeProvider time, CancellationToken ct)
    {
        var totals = Totals(await store.GetStateCountsAsync(ct));
        var now = time.GetUtcNow();
        var today = await store.GetSpendAsync(DateOnly.FromDateTime(now.UtcDateTime), ct);
        var allTime = await store.GetSpendAsync(null, ct);
        var limits = await store.GetRateLimitsAsync(ct);

        var body = new StringBuilder("<div class=\"cards\">");
        foreach (var (label, states) in Groups)
        {
            var n = states.Sum(s => totals.GetValueOrDefault(s));
            body.Append(CultureInfo.InvariantCulture, $"<div class=\"card\" data-state=\"{E(label)}\"><b>{n}</b>{E(label)}</div>");
        }

        body.Append(CultureInfo.InvariantCulture, $"<div class=\"card\"><b>${Usd(today.Sum(s => s.SpentUsd))}</b>spent today (UTC)</div></div>");
        body.Append("<p>Jobs, servers, recurring jobs and the realtime and history graphs: <a href=\"/hangfire\">Hangfire's dashboard</a>.</p>");
        body.Append("<h2>Spend per provider</h2><table><tr><th>Provider</th><th>Today (USD)</th><th>All time (USD)</th></tr>");
        foreach (var spend in allTime)
        {
            body.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(spend.Provider)}</td><td>{Usd(today.FirstOrDefault(t => t.Provider == spend.Provider)?.SpentUsd ?? 0)}</td><td>{Usd(spend.SpentUsd)}</td></tr>");
        }

        body.Append("</table><h2>Rate limits</h2><table><tr><th>Account</th><th>Next free slot</th><th>Paused until</th><th>Rate factor</th></tr>");
        foreach (var limit in limits)
        {
            var ahead = limit.NextSlot > now ? $" ({(limit.NextSlot - now).TotalSeconds:0.0} s ahead)" : " (free)";
            body.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(limit.Account)}</td><td>{Time(limit.NextSlot)}{E(ahead)}</td><td>{(limit.PausedUntil > now ? Time(limit.PausedUntil) : "")}</td><td>{limit.Factor:0.00}</td></tr>");
        }

        body.Append("</table>");
        return Page("Overview", body.ToString());
    }

    public static Dictionary<EditState, long> Totals(IReadOnlyList<BatchStateCount> counts) =>
        counts.GroupBy(c => c.State).ToDictionary(g => g.Key, g => g.Sum(c => c.Count));

    private static readonly (string Label, EditState[] States)[] Groups =
    [
        ("pending", [EditState.Pending]),
        ("in flight", [EditState.Queued, EditState.Submitting, EditState.AtProvider, EditState.Downloading]),
        ("succeeded", [EditState.Succeeded]),
        ("failed", [EditState.Failed]),
        ("cancelled", [EditState.Cancelled]),
        ("held", [EditState.Held]),
    ];
}

using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using QwenBatch.Edits;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>
/// The overview: counts by state and spend (from the counters), rate-limit rows, Hangfire's realtime graph — the
/// browser polls <c>/dashboard/stats</c> every 2 s and plots the change of the succeeded and failed totals per second —
/// and the server-rendered history graph (per hour and per day, from the outcome counters).
/// </summary>
internal static class OverviewPage
{
    public static async Task<IResult> RenderAsync(IJobStore store, TimeProvider time, CancellationToken ct)
    {
        var totals = Totals(await store.GetStateCountsAsync(ct));
        var now = time.GetUtcNow();
        var today = await store.GetSpendAsync(DateOnly.FromDateTime(now.UtcDateTime), ct);
        var allTime = await store.GetSpendAsync(null, ct);
        var limits = await store.GetRateLimitsAsync(ct);
        var outcomes = await store.GetOutcomesAsync(HistoryGraph.Since(now), ct);

        var body = new StringBuilder("<div class=\"cards\">");
        foreach (var (label, states) in Groups)
        {
            var n = states.Sum(s => totals.GetValueOrDefault(s));
            body.Append(CultureInfo.InvariantCulture, $"<div class=\"card\" data-state=\"{E(label)}\"><b>{n}</b><a href=\"/dashboard/jobs/{states[0].ToDbName()}\">{E(label)}</a></div>");
        }

        body.Append(CultureInfo.InvariantCulture, $"<div class=\"card\"><b>${Usd(today.Sum(s => s.SpentUsd))}</b>spent today (UTC)</div></div>");
        body.Append("<h2>Realtime</h2><svg id=\"graph\" width=\"600\" height=\"120\" style=\"border:1px solid #ccc\"><polyline id=\"ok\" fill=\"none\" stroke=\"#3a3\" stroke-width=\"2\"/><polyline id=\"bad\" fill=\"none\" stroke=\"#c33\" stroke-width=\"2\"/></svg>");
        body.Append("<p>succeeded/s <b id=\"okRate\">0</b> · failed/s <b id=\"badRate\">0</b></p>");
        body.Append(HistoryGraph.Render(outcomes, now));
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

        body.Append("</table>").Append(Script);
        return Page("Overview", body.ToString());
    }

    /// <summary>The JSON the realtime graph polls: totals from the counters.</summary>
    public static async Task<IResult> StatsAsync(IJobStore store, TimeProvider time, CancellationToken ct)
    {
        var totals = Totals(await store.GetStateCountsAsync(ct));
        return Results.Ok(new
        {
            at = time.GetUtcNow(),
            succeeded = totals.GetValueOrDefault(EditState.Succeeded),
            failed = totals.GetValueOrDefault(EditState.Failed),
            counts = Enum.GetValues<EditState>().ToDictionary(s => s.ToDbName(), s => totals.GetValueOrDefault(s)),
        });
    }

    public static Dictionary<EditState, long> Totals(IReadOnlyList<BatchStateCount> counts) =>
        counts.GroupBy(c => c.State).ToDictionary(g => g.Key, g => g.Sum(c => c.Count));

    private static readonly (string Label, EditState[] States)[] Groups =
    [
        ("pending", [EditState.Pending]),
        ("at the provider", [EditState.AtProvider, EditState.Submitting, EditState.Downloading]),
        ("succeeded", [EditState.Succeeded]),
        ("failed", [EditState.Failed]),
        ("cancelled", [EditState.Cancelled]),
        ("held", [EditState.Held]),
    ];

    private const string Script = """
        <script>
        (() => {
          const ok = [], bad = []; let last = null;
          const line = (id, values, max) => document.getElementById(id).setAttribute('points',
            values.map((v, i) => `${i * 10},${118 - (v / max) * 110}`).join(' '));
          async function tick() {
            try {
              const s = await (await fetch('/dashboard/stats', { cache: 'no-store' })).json();
              if (last) {
                const secs = Math.max(0.001, (Date.parse(s.at) - Date.parse(last.at)) / 1000);
                ok.push(Math.max(0, s.succeeded - last.succeeded) / secs); bad.push(Math.max(0, s.failed - last.failed) / secs);
                if (ok.length > 60) { ok.shift(); bad.shift(); }
                const max = Math.max(1, ...ok, ...bad);
                line('ok', ok, max); line('bad', bad, max);
                document.getElementById('okRate').textContent = ok[ok.length - 1].toFixed(1);
                document.getElementById('badRate').textContent = bad[bad.length - 1].toFixed(1);
              }
              last = s;
            } catch (e) { /* the next tick tries again */ }
          }
          tick(); setInterval(tick, 2000);
        })();
        </script>
        """;
}

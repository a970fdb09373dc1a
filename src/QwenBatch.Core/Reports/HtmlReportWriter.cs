using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace QwenBatch.Reports;

/// <summary>
/// Writes <c>report.html</c>: one self-contained page (inline CSS and script, no external requests) with the totals, then
/// a contact sheet of every job's inputs beside its outputs. The rows are embedded as JSON and rendered a page at a time
/// with lazily loaded images, so 10,000 jobs open quickly. Everything from the manifest reaches the page either
/// HTML-encoded or as DOM text, never as markup.
/// </summary>
public static class HtmlReportWriter
{
    public const string FileName = "report.html";

    public const int PageSize = 100;

    public static Task WriteAsync(string directory, BatchReport report, CancellationToken ct) =>
        AtomicFile.WriteAsync(directory, FileName, async temp =>
        {
            await using var file = new StreamWriter(temp, false, new UTF8Encoding(false));
            await file.WriteAsync(Render(report, directory).AsMemory(), ct);
        });

    internal static string Render(BatchReport report, string directory)
    {
        var t = report.Totals;
        var html = new StringBuilder(64 * 1024);
        html.Append("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' file: http: https:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">")
            .Append("<title>").Append(E(report.Batch.Name)).Append(" — QwenBatch report</title><style>").Append(Css).Append("</style></head><body>\n");
        html.Append("<h1>").Append(E(report.Batch.Name)).Append("</h1>\n<p class=\"muted\">Provider ").Append(E(report.Batch.Provider))
            .Append(" · generated ").Append(E(t.GeneratedAt.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture))).Append("</p>\n");

        if (report.Batch.Failure is { } failure)
        {
            html.Append("<p class=\"warn\" id=\"failure\">The batch failed before any job was enqueued (listed in errors.csv):</p><pre>")
                .Append(E(failure)).Append("</pre>\n");
        }

        html.Append("<section id=\"totals\"><table>");
        Row(html, "Jobs", Count(t.Jobs) + " (" + string.Join(", ", t.JobsByStatus.Select(s => $"{s.Value} {s.Key}")) + ")");
        Row(html, "Images", string.Join(", ", t.ImagesByStatus.Select(s => $"{s.Value} {s.Key}")));
        Row(html, "Cost", Money.Usd(t.CostUsd) + (t.CostByProvider.Count > 1
            ? " (" + string.Join(", ", t.CostByProvider.Select(p => $"{p.Key} {Money.Usd(p.Value)}")) + ")" : ""));
        Row(html, "Latency p50 / p95", $"{S(t.LatencyP50S)} / {S(t.LatencyP95S)}");
        Row(html, "Wall time", S(t.WallTimeS));
        Row(html, "Throughput", t.ImagesPerMinute is { } ipm ? ipm.ToString("0.##", CultureInfo.InvariantCulture) + " images/min" : "–");
        Row(html, "Submits possibly duplicated by a crash", Count(t.PossiblyDuplicatedSubmits));
        if (t.Skipped > 0)
        {
            Row(html, "Rows skipped as invalid", Count(t.Skipped) + " (listed in errors.csv)");
        }

        html.Append("</table></section>\n");
        if (t.ProviderMayChargeCancelled.Count > 0)
        {
            html.Append("<p class=\"warn\" id=\"may-charge\">").Append(Count(t.ProviderMayChargeCancelled.Count))
                .Append(" job(s) were cancelled while at a provider with no cancel endpoint; the provider may still charge for them: ")
                .Append(E(string.Join(", ", t.ProviderMayChargeCancelled.Take(50)))).Append(t.ProviderMayChargeCancelled.Count > 50 ? " …" : "").Append("</p>\n");
        }

        html.Append("<nav><button id=\"prev\">‹ Prev</button> <span id=\"page\"></span> <button id=\"next\">Next ›</button> ")
            .Append("<label>Status <select id=\"status\"><option value=\"\">all</option>");
        foreach (var status in t.JobsByStatus.Keys)
        {
            html.Append("<option>").Append(E(status)).Append("</option>");
        }

        html.Append("</select></label></nav>\n<div id=\"sheet\"></div>\n");
        var rows = report.Rows.Select(r => new PageRow(
            r.Id, r.Status, Money.Usd(r.CostUsd), r.Error, r.Spec.Prompt,
            r.Spec.Images.Select(i => Link(i, directory)).OfType<string>().ToList(),
            r.Files.Select(RelativeHref).ToList()));

        // The default encoder escapes <, > and &, so no manifest text can close the script element.
        html.Append("<script type=\"application/json\" id=\"rows\">").Append(JsonSerializer.Serialize(rows, PageJson)).Append("</script>\n");
        html.Append("<script>const PAGE_SIZE = ").Append(PageSize).Append(";\n").Append(Script).Append("</script>\n</body></html>\n");
        return html.ToString();
    }

    /// <summary>A local input as a link relative to the batch folder; URLs as they are; data URIs (and anything else) left out.</summary>
    internal static string? Link(string image, string directory)
    {
        if (image.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || image.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            return image;
        }

        if (!Path.IsPathRooted(image))
        {
            return null;
        }

        return RelativeHref(Path.GetRelativePath(directory, image).Replace(Path.DirectorySeparatorChar, '/'));
    }

    private static string RelativeHref(string relative) => string.Join('/', relative.Split('/').Select(Uri.EscapeDataString));

    private static void Row(StringBuilder html, string name, string value) =>
        html.Append("<tr><th>").Append(E(name)).Append("</th><td>").Append(E(value)).Append("</td></tr>");

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private static string Count(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static string S(double? seconds) => seconds is { } s ? s.ToString("0.##", CultureInfo.InvariantCulture) + " s" : "–";

    /// <summary>What the page script needs of a job.</summary>
    private sealed record PageRow(string Id, string Status, string Cost, string? Error, string Prompt, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

    private static readonly JsonSerializerOptions PageJson = new(JsonSerializerDefaults.Web);

    private const string Css = """
        body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}
        h1{margin:0 0 .2rem}.muted{color:#666;margin:0 0 1rem}
        #totals table{border-collapse:collapse;margin-bottom:1rem}#totals th{text-align:left;padding:2px 12px 2px 0;color:#555;font-weight:600}
        .warn{background:#fff4d6;border:1px solid #e0b84c;padding:.5rem .75rem;border-radius:4px}
        nav{margin:1rem 0;position:sticky;top:0;background:#fff;padding:.4rem 0;border-bottom:1px solid #ddd}
        .job{display:grid;grid-template-columns:minmax(200px,1fr) auto auto;gap:12px;border-bottom:1px solid #eee;padding:10px 0}
        .meta .id{font-weight:600}.meta .prompt{color:#333;white-space:pre-wrap;word-break:break-word}
        .status{display:inline-block;padding:0 6px;border-radius:3px;background:#eee;margin-right:6px}
        .succeeded{background:#d9f2dd}.failed{background:#f8d7da}.cancelled,.held{background:#fff1c2}
        .error{color:#a11;white-space:pre-wrap;word-break:break-word}
        .imgs{display:flex;gap:6px;align-items:flex-start}.imgs figure{margin:0;text-align:center;font-size:11px;color:#777}
        .imgs img{width:160px;height:160px;object-fit:contain;background:#f4f4f4;border:1px solid #ddd}
        .arrow{align-self:center;color:#999;font-size:20px}
        """;

    private const string Script = """
        (() => {
          const rows = JSON.parse(document.getElementById('rows').textContent);
          const sheet = document.getElementById('sheet');
          const statusFilter = document.getElementById('status');
          let page = 0;
          const view = () => statusFilter.value ? rows.filter(r => r.status === statusFilter.value) : rows;
          const pages = () => Math.max(1, Math.ceil(view().length / PAGE_SIZE));
          const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };
          const thumbs = (hrefs, label) => {
            const box = el('div', 'imgs');
            hrefs.forEach((href, i) => {
              const fig = el('figure');
              const a = el('a'); a.setAttribute('href', href);
              const img = el('img'); img.setAttribute('loading', 'lazy'); img.setAttribute('alt', label + ' ' + (i + 1)); img.setAttribute('src', href);
              a.appendChild(img); fig.appendChild(a); fig.appendChild(el('figcaption', null, label + ' ' + (i + 1)));
              box.appendChild(fig);
            });
            return box;
          };
          const render = () => {
            const all = view();
            page = Math.min(Math.max(page, 0), pages() - 1);
            sheet.replaceChildren();
            for (const r of all.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)) {
              const job = el('div', 'job');
              const meta = el('div', 'meta');
              meta.appendChild(el('div', 'id', r.id));
              const line = el('div');
              line.appendChild(el('span', 'status ' + r.status, r.status));
              line.appendChild(el('span', null, r.cost));
              meta.appendChild(line);
              meta.appendChild(el('div', 'prompt', r.prompt));
              if (r.error) meta.appendChild(el('div', 'error', r.error));
              job.appendChild(meta);
              job.appendChild(thumbs(r.inputs, 'input'));
              job.appendChild(thumbs(r.outputs, 'output'));
              sheet.appendChild(job);
            }
            document.getElementById('page').textContent = 'Page ' + (page + 1) + ' of ' + pages() + ' (' + all.length + ' jobs)';
          };
          document.getElementById('prev').onclick = () => { page--; render(); };
          document.getElementById('next').onclick = () => { page++; render(); };
          statusFilter.onchange = () => { page = 0; render(); };
          window.qwenbatch = { pages, show: p => { page = p; render(); } };
          render();
        })();
        """;
}

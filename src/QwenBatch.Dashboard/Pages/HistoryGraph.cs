using System.Globalization;
using System.Text;
using QwenBatch.Edits;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>
/// The overview's history graph, rendered on the server as inline SVG from the hourly outcome counters: succeeded
/// (green, below) and failed (red, stacked on top) per hour over the last 48 hours and per UTC day over the last 30.
/// </summary>
internal static class HistoryGraph
{
    public const int Hours = 48;
    public const int Days = 30;

    private const int Width = 720;
    private const int Height = 120;

    /// <summary>The first instant the graphs cover, so one counter query serves both.</summary>
    public static DateTimeOffset Since(DateTimeOffset now) => Day(now).AddDays(-(Days - 1));

    public static string Render(IReadOnlyList<HourlyOutcome> outcomes, DateTimeOffset now)
    {
        var thisHour = Hour(now);
        var hourly = Enumerable.Range(0, Hours).Select(i => thisHour.AddHours(i - Hours + 1))
            .Select(h => new Bucket(h, Sum(outcomes, o => o.Hour == h, EditState.Succeeded), Sum(outcomes, o => o.Hour == h, EditState.Failed)))
            .ToList();
        var today = Day(now);
        var daily = Enumerable.Range(0, Days).Select(i => today.AddDays(i - Days + 1))
            .Select(d => new Bucket(d, Sum(outcomes, o => Day(o.Hour) == d, EditState.Succeeded), Sum(outcomes, o => Day(o.Hour) == d, EditState.Failed)))
            .ToList();

        var html = new StringBuilder("<h2>History</h2><p>Succeeded <span class=\"swatch ok\"></span> and failed <span class=\"swatch bad\"></span> jobs (UTC)</p>");
        html.Append(Chart("history-hour", "per hour, last 48 hours", hourly, b => b.Start.ToString("MM-dd HH:00", CultureInfo.InvariantCulture)));
        html.Append(Chart("history-day", "per day, last 30 days", daily, b => b.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));
        return html.ToString();
    }

    private static string Chart(string id, string caption, List<Bucket> buckets, Func<Bucket, string> label)
    {
        var max = Math.Max(1, buckets.Max(b => b.Succeeded + b.Failed));
        var slot = (double)Width / buckets.Count;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<figure><figcaption>{E(caption)} · peak {max}</figcaption><svg id=\"{id}\" class=\"history\" width=\"{Width}\" height=\"{Height + 16}\" viewBox=\"0 0 {Width} {Height + 16}\" role=\"img\" ")
            .Append(CultureInfo.InvariantCulture, $"data-succeeded=\"{buckets.Sum(b => b.Succeeded)}\" data-failed=\"{buckets.Sum(b => b.Failed)}\">");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"0\" y1=\"{Height}\" x2=\"{Width}\" y2=\"{Height}\" stroke=\"#999\"/>");
        for (var i = 0; i < buckets.Count; i++)
        {
            var b = buckets[i];
            var x = i * slot + 1;
            var ok = Height * (double)b.Succeeded / max;
            var bad = Height * (double)b.Failed / max;
            svg.Append(CultureInfo.InvariantCulture, $"<g data-at=\"{E(label(b))}\" data-succeeded=\"{b.Succeeded}\" data-failed=\"{b.Failed}\"><title>{E(label(b))}: {b.Succeeded} succeeded, {b.Failed} failed</title>")
                .Append(FormattableString.Invariant($"<rect x=\"{x:0.#}\" y=\"{Height - ok:0.#}\" width=\"{slot - 2:0.#}\" height=\"{ok:0.#}\" fill=\"#3a3\"/>"))
                .Append(FormattableString.Invariant($"<rect x=\"{x:0.#}\" y=\"{Height - ok - bad:0.#}\" width=\"{slot - 2:0.#}\" height=\"{bad:0.#}\" fill=\"#c33\"/></g>"));
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"0\" y=\"{Height + 13}\" font-size=\"11\">{E(label(buckets[0]))}</text>")
            .Append(CultureInfo.InvariantCulture, $"<text x=\"{Width}\" y=\"{Height + 13}\" font-size=\"11\" text-anchor=\"end\">{E(label(buckets[^1]))}</text></svg></figure>");
        return svg.ToString();
    }

    private static long Sum(IReadOnlyList<HourlyOutcome> outcomes, Func<HourlyOutcome, bool> inBucket, EditState state) =>
        outcomes.Where(o => o.State == state && inBucket(o)).Sum(o => o.Count);

    private static DateTimeOffset Hour(DateTimeOffset t) => new(t.UtcDateTime.Year, t.UtcDateTime.Month, t.UtcDateTime.Day, t.UtcDateTime.Hour, 0, 0, TimeSpan.Zero);

    private static DateTimeOffset Day(DateTimeOffset t) => new(t.UtcDateTime.Date, TimeSpan.Zero);

    private sealed record Bucket(DateTimeOffset Start, long Succeeded, long Failed);
}

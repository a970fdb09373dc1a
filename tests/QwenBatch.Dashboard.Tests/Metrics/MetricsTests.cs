using System.Globalization;
using System.Text.RegularExpressions;
using QwenBatch.Dashboard.Tests.Browser;
using QwenBatch.Edits;

namespace QwenBatch.Dashboard.Tests.Metrics;

/// <summary><c>/metrics</c> scraped from <c>serve</c> during and after a run, against the simulator's own counters.</summary>
public sealed partial class MetricsTests(QuickTasksServe serve) : IClassFixture<QuickTasksServe>
{
    [Fact]
    public async Task Scrape_AfterABatch_CountersMovedAndAgreeWithTheSimulatorsStats()
    {
        using var http = new HttpClient();
        var before = Parse(await http.GetStringAsync($"{serve.BaseUrl}/metrics"));
        var batch = await serve.UploadAsync("metrics", 6);

        // Mid-run: the batch is in flight or waiting, and the gauges say so.
        await serve.WaitForAsync(batch, e => e.Any(x => x.State == EditState.AtProvider), "had an edit at the provider");
        var during = Parse(await http.GetStringAsync($"{serve.BaseUrl}/metrics"));
        (Value(during, "qwenbatch_edits_in_flight") + Value(during, "qwenbatch_edits_backlog")).ShouldBeGreaterThan(0);

        await serve.WaitForAsync(batch, e => e.All(x => x.State.IsSettled()), "settled");
        var after = Parse(await http.GetStringAsync($"{serve.BaseUrl}/metrics"));
        using var stats = await serve.SimulatorStatsAsync();
        var simulator = stats.RootElement;

        // Every series starts with the fixture, as the simulator's counters do.
        Value(before, "qwenbatch_edits_succeeded_total").ShouldBe(0);
        Value(after, "qwenbatch_edits_succeeded_total").ShouldBe(6);
        Value(after, "qwenbatch_edits_failed_total").ShouldBe(0);
        Value(after, "qwenbatch_edits_submitted_total").ShouldBe(simulator.GetProperty("submits").GetInt64());
        Value(after, "qwenbatch_provider_status_calls_total").ShouldBe(simulator.GetProperty("status_calls").GetInt64() + simulator.GetProperty("result_calls").GetInt64());
        Value(after, "qwenbatch_provider_rate_limited_total").ShouldBe(simulator.GetProperty("rate_limited").GetInt64());
        Value(after, "qwenbatch_spend_usd_total").ShouldBe((double)simulator.GetProperty("charged_usd").GetDecimal(), 1e-9);
        Value(after, "qwenbatch_provider_latency_seconds_count").ShouldBe(6);
        Value(after, "qwenbatch_edits_in_flight").ShouldBe(0);
        Value(after, "qwenbatch_edits_backlog").ShouldBe(0);
        after.Keys.ShouldContain(k => k.StartsWith("qwenbatch_hangfire_queue_length{", StringComparison.Ordinal) && k.Contains("queue=\"qwenbatch\"", StringComparison.Ordinal));

        // Prometheus text, each series typed and described (a counter appears once it has counted something).
        using var response = await http.GetAsync($"{serve.BaseUrl}/metrics");
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/plain");
        var text = await response.Content.ReadAsStringAsync();
        foreach (var (name, type) in new[]
        {
            ("qwenbatch_edits_submitted_total", "counter"), ("qwenbatch_edits_succeeded_total", "counter"), ("qwenbatch_provider_status_calls_total", "counter"),
            ("qwenbatch_spend_usd_total", "counter"), ("qwenbatch_provider_latency_seconds", "histogram"), ("qwenbatch_edits_in_flight", "gauge"),
            ("qwenbatch_edits_backlog", "gauge"), ("qwenbatch_hangfire_queue_length", "gauge"),
        })
        {
            text.ShouldContain($"# TYPE {name} {type}", Case.Sensitive, name);
            text.ShouldContain($"# HELP {name} ", Case.Sensitive, name);
        }
    }

    /// <summary>The scrape's samples by series (name and labels), skipping comments.</summary>
    private static Dictionary<string, double> Parse(string text) =>
        text.Split('\n').Select(l => Sample().Match(l)).Where(m => m.Success)
            .GroupBy(m => m.Groups["series"].Value).ToDictionary(g => g.Key, g => double.Parse(g.Last().Groups["value"].Value, CultureInfo.InvariantCulture));

    /// <summary>The sum of a metric's samples of the simulator provider (0 when it has none yet).</summary>
    private static double Value(Dictionary<string, double> samples, string name) =>
        samples.Where(s => (s.Key == name || s.Key.StartsWith(name + "{", StringComparison.Ordinal))
                && (!s.Key.Contains("provider=", StringComparison.Ordinal) || s.Key.Contains("provider=\"simulator\"", StringComparison.Ordinal)))
            .Sum(s => s.Value);

    [GeneratedRegex(@"^(?<series>[a-z_]+(\{[^}]*\})?) (?<value>[-+0-9.eE]+|NaN)( \d+)?$")]
    private static partial Regex Sample();
}

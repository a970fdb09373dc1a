using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Http;
using Xunit.Abstractions;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>
/// Hostile provider answers (malformed JSON, missing fields, wrong types, huge bodies) to the submit, the status poll and
/// the result call, served over loopback HTTP to the real <c>qwenbatch run</c>: never a crash, every job ends with a
/// clear, bounded error. The client-level fuzz (524 bodies × 9 statuses, both clients) is
/// tests/QwenBatch.Core.Tests/Providers/ProviderResponseFuzzTests.cs.
/// </summary>
public sealed partial class HostileProviderTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string[] Bodies =
    [
        "",
        "{",
        "null",
        "[]",
        "<html><body>502 Bad Gateway</body></html>",
        "{\"request_id\":42,\"status\":7,\"images\":\"none\",\"queue_position\":\"first\"}",
        "{\"request_id\":{},\"status\":[\"COMPLETED\"],\"images\":[7,null,{}]}",
        "{\"status\":\"COMPLETED\",\"images\":[{\"url\":12}]}",
        "{\"status\":\"COMPLETED\"}",
        new string('[', 10_000) + new string(']', 10_000),
        "{\"request_id\":\"" + new string('x', 16 * 1024 * 1024) + "\"}",
        "{\"status\":\"COMPLETED\",\"images\":[" + string.Join(',', Enumerable.Repeat("{\"url\":\"file:///etc/passwd\"}", 10_000)) + "]}",
    ];

    private static readonly string[] Phases = ["submit", "status", "response"];
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Run_HostileAnswersToEveryCall_NoCrashAndEveryJobFailsWithAClearBoundedError()
    {
        await using var provider = HostileProvider.Start();
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = provider.BaseUrl,
            ["ODIROUTER_API_KEY"] = "odr-hostile-key-44a1",
            ["Worker__MaxAttempts"] = "2",
            ["Worker__MaxProviderResubmits"] = "0",
            ["Worker__JobTimeout"] = "00:00:08",
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:00.500",
            ["Worker__RetryBaseDelay"] = "00:00:00.100",
            ["Worker__RetryMaxDelay"] = "00:00:00.300",
        };
        var rows = Phases.SelectMany(phase => Bodies.Select((_, i) => $"{phase}-{i},case {phase} {i},https://img.example/{i}.png"));
        await File.WriteAllLinesAsync(Path.Combine(_workspace.Root, "hostile.csv"), ["id,prompt,images", .. rows]);

        var run = await CliProcess.RunAsync(_workspace.Root, environment, "run", "hostile.csv", "--provider", "odirouter");

        run.ExitCode.ShouldBe(3, ChaosRig.Tail(run.Output));
        run.Output.ShouldNotContain("   at QwenBatch.");
        run.Output.ShouldNotContain("Unhandled exception");
        var report = ReportFiles.ReadCsv(Path.Combine(_workspace.BatchDir("hostile"), "report.csv"));
        report.Count.ShouldBe(Phases.Length * Bodies.Length);
        foreach (var row in report)
        {
            row["status"].ShouldBe("failed", $"{row["id"]}: {row["error"]}");
            row["error"].ShouldNotBeNullOrWhiteSpace(row["id"]);
            row["error"].Length.ShouldBeLessThan(1000, $"{row["id"]}: a huge answer must not become a huge error");
            row["error"].ShouldNotContain("   at ");
        }

        Directory.GetFiles(_workspace.BatchDir("hostile"), "*.png", SearchOption.AllDirectories).ShouldBeEmpty("nothing was downloaded from a file: URL");
        output.WriteLine($"jobs={report.Count} hostile_answers={provider.Served} outcomes: "
            + string.Join("; ", report.GroupBy(r => Shape().Replace(r["error"], "#")).Select(g => $"{g.Count()}× {g.Key}")));
    }

    [GeneratedRegex(@"[0-9]+|/requests/[^/]+/")]
    private static partial Regex Shape();

    /// <summary>Answers the odirouter paths; the job's prompt ("case &lt;phase&gt; &lt;i&gt;") chooses which call gets which hostile body.</summary>
    private sealed partial class HostileProvider : IAsyncDisposable
    {
        private readonly LoopbackServer _server;
        private int _served;

        private HostileProvider() => _server = new LoopbackServer(AnswerAsync);

        public string BaseUrl => _server.BaseUrl;

        public int Served => Volatile.Read(ref _served);

        public static HostileProvider Start() => new();

        public ValueTask DisposeAsync() => _server.DisposeAsync();

        private async Task AnswerAsync(HttpListenerContext context)
        {
            var request = context.Request;
            var path = request.Url!.AbsolutePath;
            string body;
            if (request.HttpMethod == "POST")
            {
                using var reader = new StreamReader(request.InputStream);
                var (phase, index) = Case(await reader.ReadToEndAsync());
                body = phase == "submit" ? Hostile(index) : $"{{\"request_id\":\"{phase}-{index}\",\"queue_position\":0}}";
            }
            else
            {
                var id = RequestId().Match(path).Groups[1].Value;
                var phase = id.Split('-')[0];
                var index = int.TryParse(id.Split('-').Last(), out var i) ? i : 0;
                body = path.EndsWith("/status", StringComparison.Ordinal)
                    ? phase == "status" ? Hostile(index) : "{\"status\":\"COMPLETED\"}"
                    : path.EndsWith("/response", StringComparison.Ordinal) ? Hostile(index) : "{\"status\":\"ALREADY_COMPLETED\"}";
            }

            // A client giving up on a huge body cuts the write; the server takes that as the answer's end.
            var bytes = Encoding.UTF8.GetBytes(body);
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
        }

        private string Hostile(int index)
        {
            Interlocked.Increment(ref _served);
            return Bodies[index % Bodies.Length];
        }

        private static (string Phase, int Index) Case(string submitted)
        {
            var match = CaseText().Match(submitted);
            return match.Success ? (match.Groups[1].Value, int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)) : ("submit", 0);
        }

        [GeneratedRegex(@"case (submit|status|response) ([0-9]+)")]
        private static partial Regex CaseText();

        [GeneratedRegex(@"/requests/([^/]+)/")]
        private static partial Regex RequestId();
    }
}

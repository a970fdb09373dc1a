using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Providers;
using QwenBatch.Providers.Odirouter;
using QwenBatch.Providers.WaveSpeed;

namespace QwenBatch.Core.Tests.Providers;

/// <summary>
/// Whatever a provider (or something impersonating it) answers, the clients end in a result or a
/// <see cref="ProviderException"/> the step runner understands, never in a crash of another type.
/// </summary>
public sealed class ProviderResponseFuzzTests
{
    private const int RandomBodies = 200;
    private static readonly EditRequest Edit = new("white studio background", ["https://example.com/mug.png"], null, "512*384", 1, null, OutputFormat: "png");

    public static TheoryData<string> Providers => [ProviderNames.Odirouter, ProviderNames.WaveSpeed];

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task EveryCall_HostileResponseBodies_ResultOrProviderExceptionOnly(string provider)
    {
        var unexpected = new List<string>();
        var (answered, refused) = (0, 0);
        foreach (var (status, body) in Bodies())
        {
            var client = Client(provider, status, body);
            foreach (var (name, call) in Calls(client))
            {
                try
                {
                    await call();
                    answered++;
                }
                catch (ProviderException)
                {
                    // The contract: a failure the runner can classify.
                    refused++;
                }
                catch (Exception ex)
                {
                    unexpected.Add($"{name} on {(int)status} {Preview(body)}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        }

        unexpected.ShouldBeEmpty();
        refused.ShouldBeGreaterThan(answered, "most hostile bodies are refused");
        (answered + refused).ShouldBe(Bodies().Count() * 3);
    }

    private static IEnumerable<(string Name, Func<Task> Call)> Calls(IImageEditProvider client) =>
    [
        ("submit", () => client.SubmitAsync(Edit, CancellationToken.None)),
        ("poll", () => client.PollAsync("req-1", CancellationToken.None)),
        ("cancel", () => client.CancelAsync("req-1", CancellationToken.None)),
    ];

    private static IEnumerable<(HttpStatusCode Status, byte[] Body)> Bodies()
    {
        string[] handWritten =
        [
            "", "{", "}", "[]", "null", "true", "0", "\"text\"", "{\"id\":", "{\"request_id\":null}", "{\"request_id\":42}",
            "{\"request_id\":\"\"}", "{\"request_id\":{}}", "{\"status\":7}", "{\"status\":\"COMPLETED\"}", "{\"status\":\"COMPLETED\",\"images\":7}",
            "{\"status\":\"COMPLETED\",\"images\":[7,null,{}]}", "{\"status\":\"COMPLETED\",\"images\":[{\"url\":12}]}",
            "{\"status\":\"FAILED\",\"error\":{\"nested\":[1,2]}}", "{\"status\":\"what\"}", "{\"data\":null}", "{\"data\":[]}", "{\"data\":{\"id\":5}}",
            "{\"data\":{\"id\":\"t\",\"status\":\"completed\",\"outputs\":\"x\"}}", "{\"data\":{\"id\":\"t\",\"status\":\"completed\",\"outputs\":[1,{}]}}",
            "{\"data\":{\"id\":\"t\",\"status\":\"failed\",\"error\":[]}}", "{\"code\":\"200\",\"data\":{\"id\":\"t\",\"status\":9}}",
            "{\"timings\":{\"inference\":\"slow\"},\"status\":\"COMPLETED\"}", "{\"has_nsfw_concepts\":\"maybe\",\"status\":\"COMPLETED\",\"images\":[]}",
            "{\"request_id\":\"r\",\"queue_position\":-1e999}", "{\"a\":1e400}", "\uFEFF{\"request_id\":\"r\"}", "<html>502 Bad Gateway</html>",
            new string('[', 10_000) + new string(']', 10_000),
            "{\"request_id\":\"" + new string('x', 4 * 1024 * 1024) + "\"}",
            "{\"status\":\"COMPLETED\",\"images\":[" + string.Join(',', Enumerable.Repeat("{\"url\":\"https://x/1.png\"}", 100_000)) + "]}",
        ];
        HttpStatusCode[] statuses = [HttpStatusCode.OK, HttpStatusCode.Accepted, HttpStatusCode.BadRequest, HttpStatusCode.NotFound,
            HttpStatusCode.TooManyRequests, HttpStatusCode.InternalServerError, HttpStatusCode.ServiceUnavailable, (HttpStatusCode)299, (HttpStatusCode)302];
        foreach (var status in statuses)
        {
            foreach (var text in handWritten)
            {
                yield return (status, Encoding.UTF8.GetBytes(text));
            }
        }

        // Random bytes and random JSON-ish text, seeded so a failure can be replayed.
        var random = new Random(11);
        const string JsonChars = "{}[]\":,0123456789.-eE truefalsnl\\u\u00e9\u4e2d";
        for (var i = 0; i < RandomBodies; i++)
        {
            var bytes = new byte[random.Next(0, 2048)];
            if (i % 2 == 0)
            {
                random.NextBytes(bytes);
            }
            else
            {
                bytes = Encoding.UTF8.GetBytes(new string(Enumerable.Range(0, bytes.Length).Select(_ => JsonChars[random.Next(JsonChars.Length)]).ToArray()));
            }

            yield return (HttpStatusCode.OK, bytes);
        }
    }

    private static IImageEditProvider Client(string provider, HttpStatusCode status, byte[] body)
    {
        var options = new ProviderOptions { BaseUrl = new Uri("http://provider.test/"), ApiKey = "sk-fuzz-0000", RequestTimeout = TimeSpan.FromSeconds(5) };
        var http = new HttpClient(new CannedHandler(status, body));
        return provider == ProviderNames.WaveSpeed
            ? new WaveSpeedClient(http, options, NullLogger<WaveSpeedClient>.Instance)
            : new OdirouterClient(http, options, NullLogger<OdirouterClient>.Instance);
    }

    private static string Preview(byte[] body) => body.Length <= 60 ? Encoding.UTF8.GetString(body) : $"{Encoding.UTF8.GetString(body, 0, 60)}… ({body.Length} bytes)";

    /// <summary>Answers every request with the same status and body, as JSON.</summary>
    private sealed class CannedHandler(HttpStatusCode status, byte[] body) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            return Task.FromResult(new HttpResponseMessage(status) { Content = content, RequestMessage = request });
        }
    }
}

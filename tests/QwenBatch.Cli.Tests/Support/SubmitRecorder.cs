using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using QwenBatch.Testing.Http;

namespace QwenBatch.Cli.Tests.Support;

/// <summary>One API call as the provider saw it: its kind (submit, status, response, cancel), the key, when, and its HTTP status.</summary>
internal sealed record RecordedCall(string Kind, string Key, DateTimeOffset Sent, DateTimeOffset Answered, int Status);

/// <summary>One submit POST as the provider saw it: who sent it (the API key), for which edit, when, and its answer.</summary>
/// <param name="Key">The bearer key, which each worker of a chaos run has its own of.</param>
/// <param name="Image">The edit's input image URL, unique per edit in a chaos manifest.</param>
/// <param name="Status">The provider's HTTP status (0: its connection failed).</param>
/// <param name="RequestId">The task's id when the provider accepted it (a 200 with a request id).</param>
internal sealed record RecordedSubmit(string Key, string? Image, DateTimeOffset Sent, DateTimeOffset Answered, int Status, string? RequestId)
{
    public bool Accepted => RequestId is not null;
}

/// <summary>
/// A pass-through in front of the simulator that records every API call and above all every submit POST, so a test can
/// count what the provider accepted per edit, how many POSTs each process had on their way at once, and when each call
/// reached the provider. The provider call runs to its end even
/// when the client is gone (a SIGKILLed worker): a provider does not know its client died, and accepts the task anyway.
/// Status, result and cancel calls pass through unrecorded; output URLs in the answers point at the simulator itself.
/// </summary>
internal sealed partial class SubmitRecorder : IAsyncDisposable
{
    private static readonly HttpClient Upstream = new(new SocketsHttpHandler { MaxConnectionsPerServer = 512, UseCookies = false })
    {
        Timeout = TimeSpan.FromMinutes(2),
    };

    private readonly LoopbackServer _server;
    private readonly Uri _target;
    private readonly ConcurrentQueue<RecordedSubmit> _submits = new();
    private readonly ConcurrentQueue<RecordedCall> _calls = new();
    private readonly ConcurrentDictionary<string, int> _onTheirWay = new(StringComparer.Ordinal);

    private SubmitRecorder(Uri target)
    {
        _target = target;
        _server = new LoopbackServer(AnswerAsync);
    }

    public string BaseUrl => _server.BaseUrl;

    public IReadOnlyList<RecordedSubmit> Submits => [.. _submits.OrderBy(s => s.Sent)];

    /// <summary>Every API call passed through, submits included, in the order sent.</summary>
    public IReadOnlyList<RecordedCall> Calls => [.. _calls.OrderBy(s => s.Sent)];

    public static SubmitRecorder Start(Uri simulator) => new(simulator);

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    /// <summary>
    /// The most of <paramref name="submits"/> on their way at the same time, among those sent within <paramref name="window"/>
    /// of <paramref name="from"/> (any time after it when null).
    /// </summary>
    public static int MostInFlight(IEnumerable<RecordedSubmit> submits, DateTimeOffset from, TimeSpan? window)
    {
        var sent = submits.Where(s => s.Sent >= from && (window is not { } w || s.Sent <= from + w)).ToList();
        return sent.Count == 0 ? 0 : sent.Max(s => sent.Count(o => o.Sent <= s.Sent && o.Answered > s.Sent));
    }

    /// <summary>Submit POSTs of <paramref name="key"/> (any key when null) on their way to the provider now.</summary>
    public int OnTheirWay(string? key = null) => key is null ? _onTheirWay.Values.Sum() : _onTheirWay.GetValueOrDefault(key);

    /// <summary>POSTs of <paramref name="key"/> sent before <paramref name="at"/> and answered after it.</summary>
    public int InFlightAt(string key, DateTimeOffset at) => _submits.Count(s => s.Key == key && s.Sent <= at && s.Answered > at);

    private async Task AnswerAsync(HttpListenerContext context)
    {
        var request = context.Request;
        using var body = new MemoryStream();
        await request.InputStream.CopyToAsync(body);
        var bytes = body.ToArray();
        using var forward = new HttpRequestMessage(new HttpMethod(request.HttpMethod), new Uri(_target, request.Url!.PathAndQuery.TrimStart('/')));
        if (bytes.Length > 0 || request.HttpMethod is "POST" or "PUT")
        {
            forward.Content = new ByteArrayContent(bytes);
            if (request.ContentType is { } type)
            {
                forward.Content.Headers.TryAddWithoutValidation("Content-Type", type);
            }
        }

        var authorization = request.Headers["Authorization"];
        if (authorization is not null)
        {
            forward.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        var submit = request.HttpMethod == "POST" && !request.Url.AbsolutePath.Contains("/requests/", StringComparison.Ordinal);
        var key = authorization?.Replace("Bearer ", "", StringComparison.Ordinal) ?? "";
        var sent = TimeProvider.System.GetUtcNow();
        HttpResponseMessage response;
        byte[] answer;
        if (submit)
        {
            _onTheirWay.AddOrUpdate(key, 1, (_, n) => n + 1);
        }

        try
        {
            // No cancellation: the provider finishes a request whose client has gone.
            response = await Upstream.SendAsync(forward, CancellationToken.None);
            answer = await response.Content.ReadAsByteArrayAsync(CancellationToken.None);
        }
        catch (HttpRequestException)
        {
            _calls.Enqueue(new RecordedCall(Kind(request.HttpMethod, request.Url.AbsolutePath), key, sent, TimeProvider.System.GetUtcNow(), 0));
            if (submit)
            {
                Record(key, bytes, sent, 0, null);
            }

            context.Response.Abort();
            return;
        }

        using (response)
        {
            _calls.Enqueue(new RecordedCall(Kind(request.HttpMethod, request.Url.AbsolutePath), key, sent, TimeProvider.System.GetUtcNow(), (int)response.StatusCode));
            if (submit)
            {
                Record(key, bytes, sent, (int)response.StatusCode, response.IsSuccessStatusCode ? RequestId(answer) : null);
            }

            context.Response.StatusCode = (int)response.StatusCode;
            if (response.Content.Headers.ContentType is { } contentType)
            {
                context.Response.ContentType = contentType.ToString();
            }

            if (response.Headers.RetryAfter is { } retryAfter)
            {
                context.Response.AddHeader("Retry-After", retryAfter.ToString());
            }

            context.Response.ContentLength64 = answer.Length;
            await context.Response.OutputStream.WriteAsync(answer);
        }
    }

    private void Record(string key, byte[] body, DateTimeOffset sent, int status, string? requestId)
    {
        var image = Image().Match(Encoding.UTF8.GetString(body)) is { Success: true } match ? match.Value : null;
        _submits.Enqueue(new RecordedSubmit(key, image, sent, TimeProvider.System.GetUtcNow(), status, requestId));
        _onTheirWay.AddOrUpdate(key, 0, (_, n) => n - 1);
    }

    private static string Kind(string method, string path) =>
        method == "POST" && !path.Contains("/requests/", StringComparison.Ordinal) ? "submit" : path[(path.LastIndexOf('/') + 1)..];

    private static string? RequestId(byte[] answer)
    {
        try
        {
            using var json = JsonDocument.Parse(answer);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("request_id", out var id) && id.ValueKind == JsonValueKind.String
                ? id.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    [GeneratedRegex(@"https://images\.example/[0-9]+\.png")]
    private static partial Regex Image();
}

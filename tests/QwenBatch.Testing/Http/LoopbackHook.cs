using System.Net;

namespace QwenBatch.Testing.Http;

/// <summary>One request a <see cref="LoopbackHook"/> received.</summary>
public sealed record HookRequest(string Method, string ContentType, byte[] Body, IReadOnlyDictionary<string, string> Headers);

/// <summary>
/// A webhook receiver on a <see cref="LoopbackServer"/>: answers the given statuses in turn (then 200) and records every
/// request, so tests see what went over the wire.
/// </summary>
public sealed class LoopbackHook : IDisposable
{
    private readonly Queue<HttpStatusCode> _answers;
    private readonly List<HookRequest> _requests = [];
    private readonly LoopbackServer _server;

    public LoopbackHook(params HttpStatusCode[] answers)
    {
        _answers = new Queue<HttpStatusCode>(answers);
        _server = new LoopbackServer(AnswerAsync, "/hooks/batch-done/");
    }

    public string Url => _server.BaseUrl;

    public IReadOnlyList<HookRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    public void Dispose() => _server.DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task AnswerAsync(HttpListenerContext context)
    {
        using var body = new MemoryStream();
        await context.Request.InputStream.CopyToAsync(body);
        var headers = context.Request.Headers.AllKeys.Where(k => k is not null).ToDictionary(k => k!, k => context.Request.Headers[k] ?? "", StringComparer.OrdinalIgnoreCase);
        HttpStatusCode status;
        lock (_requests)
        {
            _requests.Add(new HookRequest(context.Request.HttpMethod, context.Request.ContentType ?? "", body.ToArray(), headers));
            status = _answers.Count > 0 ? _answers.Dequeue() : HttpStatusCode.OK;
        }

        context.Response.StatusCode = (int)status;
    }
}

using System.Net;
using System.Net.Sockets;

namespace QwenBatch.Testing.Http;

/// <summary>One request a <see cref="LoopbackHook"/> received.</summary>
public sealed record HookRequest(string Method, string ContentType, byte[] Body, IReadOnlyDictionary<string, string> Headers);

/// <summary>
/// A real HTTP endpoint on a loopback port (a webhook receiver): answers the given statuses in turn (then 200) and records
/// every request, so tests see what went over the wire.
/// </summary>
public sealed class LoopbackHook : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Queue<HttpStatusCode> _answers;
    private readonly List<HookRequest> _requests = [];
    private readonly Task _serving;

    public LoopbackHook(params HttpStatusCode[] answers)
    {
        _answers = new Queue<HttpStatusCode>(answers);

        // HttpListener cannot take port 0: borrow a free port from the OS first.
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Url = $"http://127.0.0.1:{port}/hooks/batch-done/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    public string Url { get; }

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

    public void Dispose()
    {
        // Close alone: it stops listening too. Stop followed by Close makes the managed listener look its endpoint up a
        // second time, which binds the port again and fails ("Address already in use") once another process has it.
        try
        {
            _listener.Close();
        }
        catch (HttpListenerException)
        {
            // Already closed; nothing is left to release.
        }

        _serving.Wait(TimeSpan.FromSeconds(5));
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                await AnswerAsync(context);
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or IOException)
            {
                // The listener closed while answering: the test is over.
                return;
            }
        }
    }

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
        context.Response.Close();
    }
}

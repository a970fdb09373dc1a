using System.Net;
using System.Net.Sockets;

namespace QwenBatch.Testing.Http;

/// <summary>
/// A real HTTP server on a loopback port for tests that play the other side (a provider, a webhook receiver): every
/// request is answered, concurrently, by the given function. Closed once on dispose; requests cut by the close are the
/// test's end, not its failure.
/// </summary>
public sealed class LoopbackServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<HttpListenerContext, Task> _answer;
    private readonly Task _serving;

    /// <param name="path">The path prefix served, e.g. <c>/hooks/</c>; the whole site by default.</param>
    public LoopbackServer(Func<HttpListenerContext, Task> answer, string path = "/")
    {
        _answer = answer;
        BaseUrl = $"http://127.0.0.1:{FreePort()}{path}";
        _listener.Prefixes.Add(BaseUrl);
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    public string BaseUrl { get; }

    /// <summary>A port the OS has just handed out (HttpListener cannot take port 0 itself).</summary>
    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
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

        await _serving.WaitAsync(TimeSpan.FromSeconds(5));
    }

    private async Task ServeAsync()
    {
        while (true)
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

            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        try
        {
            await _answer(context);
            context.Response.Close();
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or IOException)
        {
            // The listener closed while answering: the test is over.
        }
    }
}

using System.Net;
using System.Net.Sockets;
using QwenBatch.Edits;
using QwenBatch.Outputs;

namespace QwenBatch.Core.Tests.Outputs;

/// <summary>
/// What a hostile or broken provider's output URLs cannot make the downloader do, over real loopback HTTP: follow a
/// redirect to another scheme, read a local file, write past the size limit, or write outside the batch folder.
/// </summary>
public sealed class OutputDownloaderSecurityTests : IAsyncDisposable
{
    private const long Limit = 4096;
    private readonly string _folder = Directory.CreateTempSubdirectory("qwenbatch-dlsec-").FullName;
    private readonly HttpListener _listener = new();
    private readonly Task _serving;
    private readonly byte[] _small = OutputDownloaderTests.Png(1000);
    private readonly byte[] _big = OutputDownloaderTests.Png(3 * (int)Limit);

    public OutputDownloaderSecurityTests()
    {
        Port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _serving = ServeAsync();
    }

    private int Port { get; }

    private string Batch => Path.Combine(_folder, "batch");

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://127.0.0.1/1.png")]
    [InlineData("gopher://127.0.0.1/1.png")]
    public async Task DownloadAsync_RedirectToAnotherScheme_IsNotFollowedAndLeavesNoFile(string target)
    {
        // Found by this test: .NET's own redirect handling followed http → ftp:// and gopher:// (it connected to ports 21
        // and 70), so the downloader follows redirects itself.
        var error = await Should.ThrowAsync<InvalidDataException>(() => DownloadAsync($"redirect?to={Uri.EscapeDataString(target)}"));

        error.Message.ShouldContain($"redirects to scheme '{new Uri(target).Scheme}', which is not allowed");
        Directory.GetFiles(_folder, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task DownloadAsync_EndlessRedirects_StopAfterTheLimit()
    {
        var error = await Should.ThrowAsync<InvalidDataException>(() => DownloadAsync("loop"));

        error.Message.ShouldContain($"more than {OutputDownloader.MaxRedirects} times");
    }

    [Fact]
    public async Task DownloadAsync_RedirectWithinHttp_IsFollowed()
    {
        var file = await DownloadAsync($"redirect?to={Uri.EscapeDataString($"http://127.0.0.1:{Port}/small")}");

        (await File.ReadAllBytesAsync(Path.Combine(Batch, file.Path))).ShouldBe(_small);
    }

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://127.0.0.1/1.png")]
    public async Task DownloadAsync_OutputUrlOfAnotherScheme_IsRefusedWithoutReading(string url)
    {
        var downloader = new OutputDownloader(new HttpClient(OutputDownloader.CreateHandler()), Limit);

        var error = await Should.ThrowAsync<InvalidDataException>(() =>
            downloader.DownloadAsync(new ProviderOutput(url, null, null), Batch, "1-1", ext => $"job.{ext}", CancellationToken.None));

        error.Message.ShouldContain("is not allowed");
        Directory.GetFiles(_folder, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("big")]
    [InlineData("big-chunked")]
    public async Task DownloadAsync_BodyOverTheLimit_IsRefusedWithOrWithoutContentLengthAndLeavesNoFile(string path)
    {
        var error = await Should.ThrowAsync<InvalidDataException>(() => DownloadAsync(path));

        error.Message.ShouldContain($"{Limit} byte limit");
        Directory.GetFiles(_folder, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task DownloadAsync_Base64OverTheLimit_IsRefusedAndLeavesNoFile()
    {
        var downloader = new OutputDownloader(new HttpClient(OutputDownloader.CreateHandler()), Limit);

        await Should.ThrowAsync<InvalidDataException>(() => downloader.DownloadAsync(
            new ProviderOutput(null, Convert.ToBase64String(_big), null), Batch, "1-1", ext => $"job.{ext}", CancellationToken.None));

        Directory.GetFiles(_folder, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task DownloadAsync_NameThroughALinkedFolder_IsRefusedAndNothingIsWrittenOutside()
    {
        var outside = Directory.CreateDirectory(Path.Combine(_folder, "outside")).FullName;
        Directory.CreateDirectory(Batch);
        Directory.CreateSymbolicLink(Path.Combine(Batch, "linked"), outside);

        var error = await Should.ThrowAsync<InvalidDataException>(() =>
            new OutputDownloader(new HttpClient(OutputDownloader.CreateHandler()), Limit).DownloadAsync(new ProviderOutput($"http://127.0.0.1:{Port}/small", null, null), Batch, "1-1",
                ext => $"linked/job.{ext}", CancellationToken.None));

        error.Message.ShouldContain("symbolic link");
        Directory.GetFiles(outside).ShouldBeEmpty();
        Directory.GetFiles(Batch, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        try
        {
            await _serving;
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
        {
            // Stopped.
        }

        Directory.Delete(_folder, recursive: true);
    }

    private Task<OutputFile> DownloadAsync(string path) =>
        new OutputDownloader(new HttpClient(OutputDownloader.CreateHandler()), Limit).DownloadAsync(new ProviderOutput($"http://127.0.0.1:{Port}/{path}", null, null), Batch, "1-1",
            ext => $"job.{ext}", CancellationToken.None);

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

            var response = context.Response;
            switch (context.Request.Url!.AbsolutePath)
            {
                case "/redirect":
                    response.StatusCode = 302;
                    response.RedirectLocation = context.Request.QueryString["to"];
                    break;
                case "/loop":
                    response.StatusCode = 307;
                    response.RedirectLocation = "/loop";
                    break;
                case "/small":
                    response.ContentLength64 = _small.Length;
                    await response.OutputStream.WriteAsync(_small);
                    break;
                case "/big":
                    response.ContentLength64 = _big.Length;
                    await TryWriteAsync(response, _big);
                    break;
                case "/big-chunked":
                    response.SendChunked = true;
                    await TryWriteAsync(response, _big);
                    break;
                default:
                    response.StatusCode = 404;
                    break;
            }

            try
            {
                response.Close();
            }
            catch (HttpListenerException)
            {
                // The client went away after refusing the body.
            }
        }
    }

    private static async Task TryWriteAsync(HttpListenerResponse response, byte[] body)
    {
        try
        {
            await response.OutputStream.WriteAsync(body);
        }
        catch (HttpListenerException)
        {
            // The downloader stops reading at the limit and closes the connection.
        }
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}

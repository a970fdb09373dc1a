using System.Net;
using System.Security.Cryptography;
using QwenBatch.Edits;
using QwenBatch.Outputs;

namespace QwenBatch.Core.Tests.Outputs;

public sealed class OutputDownloaderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("qwenbatch-dl-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task DownloadAsync_Base64DataUri_WritesFileWithShaAndLength()
    {
        var png = Png(300_000);
        var downloader = new OutputDownloader(new HttpClient(new FixedHandler(png, png.Length)));
        var uri = "data:image/png;base64," + Convert.ToBase64String(png, Base64FormattingOptions.InsertLineBreaks);

        var file = await downloader.DownloadAsync(new ProviderOutput(null, uri, null), _folder, "1-1", ext => $"sub/job.{ext}", CancellationToken.None);

        file.ShouldBe(new OutputFile("sub/job.png", Convert.ToHexStringLower(SHA256.HashData(png)), png.Length));
        (await File.ReadAllBytesAsync(Path.Combine(_folder, "sub", "job.png"))).ShouldBe(png);
        (await OutputDownloader.IsIntactAsync(_folder, file, CancellationToken.None)).ShouldBeTrue();
        Directory.GetFiles(_folder, "*.part", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task DownloadAsync_BodyShorterThanContentLength_ThrowsAndLeavesNoFile()
    {
        var png = Png(10_000);
        var downloader = new OutputDownloader(new HttpClient(new FixedHandler(png[..5000], png.Length)));

        await Should.ThrowAsync<Exception>(() =>
            downloader.DownloadAsync(new ProviderOutput("http://files.test/1.png", null, null), _folder, "1-1", ext => $"job.{ext}", CancellationToken.None));

        Directory.GetFiles(_folder, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task DownloadAsync_CutPngWithoutContentLength_ThrowsBecauseTheEndMarkerIsMissing()
    {
        var png = Png(10_000);
        var downloader = new OutputDownloader(new HttpClient(new FixedHandler(png[..5000], null)));

        var error = await Should.ThrowAsync<IOException>(() =>
            downloader.DownloadAsync(new ProviderOutput("http://files.test/1.png", null, null), _folder, "1-1", ext => $"job.{ext}", CancellationToken.None));

        error.Message.ShouldContain("incomplete");
        Directory.GetFiles(_folder, "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Theory]
    [InlineData(10_000, true)]
    [InlineData(9_990, false)]
    public async Task DownloadAsync_BodyArrivingAFewBytesAtATime_SignatureAndEndMarkerCheckedAcrossWrites(int received, bool whole)
    {
        // The check reads the first and last bytes as they are written: here the signature and the end marker each span
        // several writes of 3 bytes.
        var png = Png(10_000);
        var downloader = new OutputDownloader(new HttpClient(new FixedHandler(png[..received], null, readSize: 3)));
        var download = () => downloader.DownloadAsync(new ProviderOutput("http://files.test/1.png", null, null), _folder, "1-1", ext => $"job.{ext}", CancellationToken.None);

        if (whole)
        {
            (await download()).ShouldBe(new OutputFile("job.png", Convert.ToHexStringLower(SHA256.HashData(png)), png.Length));
            (await File.ReadAllBytesAsync(Path.Combine(_folder, "job.png"))).ShouldBe(png);
        }
        else
        {
            (await Should.ThrowAsync<IOException>(download)).Message.ShouldContain("incomplete");
            Directory.GetFiles(_folder, "*", SearchOption.AllDirectories).ShouldBeEmpty();
        }
    }

    [Fact]
    public async Task DownloadAsync_NotAnImage_Throws()
    {
        var html = "<html>nope</html>"u8.ToArray();
        var downloader = new OutputDownloader(new HttpClient(new FixedHandler(html, html.Length)));

        await Should.ThrowAsync<InvalidDataException>(() =>
            downloader.DownloadAsync(new ProviderOutput("http://files.test/1.png", null, null), _folder, "1-1", ext => $"job.{ext}", CancellationToken.None));

        Directory.GetFiles(_folder).ShouldBeEmpty();
    }

    [Fact]
    public async Task IsIntactAsync_FileChangedAfterDownload_IsFalse()
    {
        var png = Png(1000);
        var downloader = new OutputDownloader(new HttpClient(new FixedHandler(png, png.Length)));
        var file = await downloader.DownloadAsync(new ProviderOutput("http://files.test/1.png", null, null), _folder, "1-1", ext => $"job.{ext}", CancellationToken.None);
        var bytes = await File.ReadAllBytesAsync(Path.Combine(_folder, file.Path));
        bytes[100] ^= 0xFF;
        await File.WriteAllBytesAsync(Path.Combine(_folder, file.Path), bytes);

        (await OutputDownloader.IsIntactAsync(_folder, file, CancellationToken.None)).ShouldBeFalse();
    }

    /// <summary>A PNG-shaped byte string (signature, filler, IEND): enough for format and end-marker checks.</summary>
    internal static byte[] Png(int length)
    {
        var bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        byte[] signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
        byte[] end = [0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82];
        signature.CopyTo(bytes, 0);
        end.CopyTo(bytes, length - end.Length);
        return bytes;
    }

    private sealed class FixedHandler(byte[] body, long? contentLength, int? readSize = null) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var content = new StreamContent(readSize is { } size ? new TrickleStream(body, size) : new MemoryStream(body));
            content.Headers.ContentLength = contentLength;
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = content });
        }
    }

    /// <summary>A body that hands out at most <c>size</c> bytes per read, as a slow connection does.</summary>
    private sealed class TrickleStream(byte[] body, int size) : MemoryStream(body)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, size));

        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(buffer.Length, size)]);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, size)], cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Math.Min(count, size), cancellationToken);
    }
}

using System.Security.Cryptography;
using System.Text;
using QwenBatch.Edits;

namespace QwenBatch.Outputs;

/// <summary>
/// Fetches one provider output into a folder: streamed (a URL's body, or inline base64 decoded in chunks) to a hidden
/// temporary file while its SHA-256 is computed, checked, then renamed, so a crash or a cut connection never leaves a
/// partial image under a real name. Only http(s) URLs are fetched, bodies are cut off at <paramref name="maxOutputBytes"/>,
/// and redirects are followed here, to http(s) only (give it an HttpClient over <see cref="CreateHandler"/>).
/// </summary>
public sealed class OutputDownloader(HttpClient http, long maxOutputBytes = OutputDownloader.MaxOutputBytes)
{
    public const long MaxOutputBytes = 100L * 1024 * 1024;

    /// <summary>Temporary files of downloads start with this, so a sweep can find what a crash left behind.</summary>
    public const string TempPrefix = ".dl-";

    /// <summary>
    /// The hidden folder, inside the batch folder (so the final rename stays on one file system), where downloads are
    /// written until they are whole. Kept apart from the outputs so finding a job's leftovers reads only the downloads
    /// in flight, not a folder of 100,000 finished images once per download.
    /// </summary>
    public const string PartsFolder = ".downloads";

    public static string PartsDirectory(string directory) => Path.Combine(directory, PartsFolder);

    /// <summary>Redirects followed for one output URL.</summary>
    public const int MaxRedirects = 5;

    private const int BufferBytes = 81920;

    /// <summary>The primary handler for the downloader's HttpClient: redirects are the downloader's to follow, not the handler's.</summary>
    public static HttpMessageHandler CreateHandler() => new SocketsHttpHandler { AllowAutoRedirect = false };

    /// <summary>
    /// Writes the output and returns it as recorded. <paramref name="name"/> maps the extension read from the bytes to the
    /// file's path relative to <paramref name="directory"/>; the temporary file, in <see cref="PartsFolder"/>, is named
    /// <c>.dl-&lt;<paramref name="tempTag"/>&gt;-…</c> so the job's own leftovers can be found again.
    /// </summary>
    public async Task<OutputFile> DownloadAsync(ProviderOutput output, string directory, string tempTag, Func<string, string> name, CancellationToken ct)
    {
        var parts = Directory.CreateDirectory(PartsDirectory(directory)).FullName;
        var temp = Path.Combine(parts, $"{TempPrefix}{tempTag}-{Guid.NewGuid():N}.part");
        try
        {
            long length;
            string sha;
            string extension;

            // Unbuffered: what is written comes in chunks already (a body's reads, decoded base64), and a FileStream buffer
            // would be another 80 KB allocated and zeroed per output.
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, useAsync: true))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var sink = new HashingSink(file, hash);
                if (output.Url is { } url && !url.StartsWith("data:", StringComparison.Ordinal))
                {
                    await CopyUrlAsync(url, sink, ct);
                }
                else if ((output.Base64 ?? output.Url) is { } base64)
                {
                    await Base64Decoder.CopyAsync(base64, sink, maxOutputBytes, ct);
                }
                else
                {
                    throw new InvalidDataException("The provider output has neither a URL nor data.");
                }

                await file.FlushAsync(ct);
                length = sink.Written;
                sha = Convert.ToHexStringLower(hash.GetHashAndReset());

                // Checked from the bytes as they went to the file (a failed write throws), not by reading the file again.
                extension = Check(sink.Head, sink.Tail, length);
            }

            var relative = name(extension);
            var target = OutputNames.Resolve(directory, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Move(temp, target, overwrite: true);
            return new OutputFile(relative, sha, length);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>True when <paramref name="recorded"/> is in the folder with the length and SHA-256 that were recorded.</summary>
    public static async Task<bool> IsIntactAsync(string directory, OutputFile recorded, CancellationToken ct)
    {
        if (recorded.Sha256.Length == 0)
        {
            return false;
        }

        var path = OutputNames.Resolve(directory, recorded.Path);
        var info = new FileInfo(path);
        if (!info.Exists || info.Length != recorded.Bytes)
        {
            return false;
        }

        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, useAsync: true);
        var sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
        return sha == recorded.Sha256;
    }

    /// <summary>The format from the first bytes, and the format's own end marker, so a cut file is caught even without a length.</summary>
    private static string Check(ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail, long length)
    {
        var extension = ImageFormat.Sniff(head)
            ?? throw new InvalidDataException("The downloaded output is not an image in a known format.");
        if (!ImageFormat.IsComplete(extension, head, tail, length))
        {
            throw new IOException($"The downloaded {extension} output is incomplete ({length} bytes, no end marker); it is fetched again.");
        }

        return extension;
    }

    private async Task CopyUrlAsync(string url, Stream destination, CancellationToken ct)
    {
        var uri = new Uri(url);
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        {
            throw new InvalidDataException($"Output URL scheme '{uri.Scheme}' is not allowed.");
        }

        using var response = await GetFollowingRedirectsAsync(uri, ct);
        uri = response.RequestMessage?.RequestUri ?? uri;
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"Download of {uri.AbsolutePath} answered HTTP {(int)response.StatusCode}", null, response.StatusCode);
        }

        var expected = response.Content.Headers.ContentLength;
        if (expected > maxOutputBytes)
        {
            throw new InvalidDataException($"The output is {expected} bytes, over the {maxOutputBytes} byte limit.");
        }

        long total = 0;
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[BufferBytes];
            int n;
            while ((n = await body.ReadAsync(buffer, ct)) > 0)
            {
                total += n;
                if (total > maxOutputBytes)
                {
                    throw new InvalidDataException($"The output exceeds the {maxOutputBytes} byte limit.");
                }

                await destination.WriteAsync(buffer.AsMemory(0, n), ct);
            }
        }
        catch (HttpIOException ex)
        {
            // The server cut the connection mid-body: the same failure as a short body, retried the same way.
            throw new IOException($"The download of {uri.AbsolutePath} was truncated after {total} bytes: {ex.Message}", ex);
        }

        if (expected is { } length && total != length)
        {
            throw new IOException($"The download of {uri.AbsolutePath} was truncated: {total} of {length} bytes.");
        }
    }

    /// <summary>
    /// GET, following at most <see cref="MaxRedirects"/> redirects, each to http(s) only and never from https down to http.
    /// The client's handler must not follow redirects itself (<see cref="CreateHandler"/>): .NET's own redirect handling
    /// follows http to any scheme (a Location of ftp://host/ made it connect to port 21).
    /// </summary>
    private async Task<HttpResponseMessage> GetFollowingRedirectsAsync(Uri uri, CancellationToken ct)
    {
        for (var hop = 0; ; hop++)
        {
            var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, ct);
            if ((int)response.StatusCode is not (301 or 302 or 303 or 307 or 308) || response.Headers.Location is not { } location)
            {
                return response;
            }

            response.Dispose();
            var next = location.IsAbsoluteUri ? location : new Uri(uri, location);
            if (next.Scheme != Uri.UriSchemeHttp && next.Scheme != Uri.UriSchemeHttps)
            {
                throw new InvalidDataException($"The download of {uri.AbsolutePath} redirects to scheme '{next.Scheme}', which is not allowed.");
            }

            if (uri.Scheme == Uri.UriSchemeHttps && next.Scheme == Uri.UriSchemeHttp)
            {
                throw new InvalidDataException($"The download of {uri.AbsolutePath} redirects from https to http, which is not allowed.");
            }

            if (hop >= MaxRedirects)
            {
                throw new InvalidDataException($"The download of {uri.AbsolutePath} redirects more than {MaxRedirects} times.");
            }

            uri = next;
        }
    }

    /// <summary>A write-only stream that hashes and counts what passes through to the file, keeping its first and last bytes.</summary>
    private sealed class HashingSink(Stream inner, IncrementalHash hash) : Stream
    {
        private const int HeadBytes = 64;
        private const int TailBytes = 16;
        private readonly byte[] _head = new byte[HeadBytes];
        private readonly byte[] _tail = new byte[TailBytes];
        private int _tailLength;

        public long Written { get; private set; }

        /// <summary>The first bytes written (up to 64), for the format's signature.</summary>
        public ReadOnlySpan<byte> Head => _head.AsSpan(0, (int)Math.Min(Written, HeadBytes));

        /// <summary>The last bytes written (up to 16), for the format's end marker.</summary>
        public ReadOnlySpan<byte> Tail => _tail.AsSpan(0, _tailLength);

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written;

        public override long Position { get => Written; set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            Observe(buffer.AsSpan(offset, count));
            inner.Write(buffer, offset, count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Observe(buffer.Span);
            await inner.WriteAsync(buffer, cancellationToken);
        }

        private void Observe(ReadOnlySpan<byte> bytes)
        {
            hash.AppendData(bytes);
            if (Written < HeadBytes)
            {
                var take = (int)Math.Min(HeadBytes - Written, bytes.Length);
                bytes[..take].CopyTo(_head.AsSpan((int)Written));
            }

            Written += bytes.Length;
            if (bytes.Length >= TailBytes)
            {
                bytes[^TailBytes..].CopyTo(_tail);
                _tailLength = TailBytes;
            }
            else
            {
                // Shift what is kept left and append: the tail is the last 16 bytes of everything written so far.
                var keep = Math.Min(_tailLength, TailBytes - bytes.Length);
                _tail.AsSpan(_tailLength - keep, keep).CopyTo(_tail);
                bytes.CopyTo(_tail.AsSpan(keep));
                _tailLength = keep + bytes.Length;
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}

/// <summary>Decodes base64 (optionally a data URI) into a stream a chunk at a time, never as one big byte array.</summary>
internal static class Base64Decoder
{
    /// <summary>Characters per chunk: a multiple of 4, so every chunk but the last decodes on its own.</summary>
    private const int ChunkChars = 64 * 1024;

    public static async Task CopyAsync(string text, Stream destination, long maxBytes, CancellationToken ct)
    {
        var start = 0;
        if (text.StartsWith("data:", StringComparison.Ordinal))
        {
            var comma = text.IndexOf(',', StringComparison.Ordinal);
            if (comma < 0 || !text.AsSpan(0, comma).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidDataException("The provider's data URI is not base64.");
            }

            start = comma + 1;
        }

        // Sized to the text when it is smaller than a chunk (most inline outputs): no 128 KB buffer per small image.
        var size = Math.Min(ChunkChars, ((text.Length - start) + 3) / 4 * 4);
        var chars = new char[size];
        var bytes = new byte[size / 4 * 3];
        var filled = 0;
        long total = 0;
        for (var i = start; i <= text.Length; i++)
        {
            // Whitespace (line-wrapped base64) is skipped; the decoder sees only whole quads until the last chunk.
            if (i < text.Length && !char.IsWhiteSpace(text[i]))
            {
                chars[filled++] = text[i];
            }

            if (filled == chars.Length || (i == text.Length && filled > 0))
            {
                if (!Convert.TryFromBase64Chars(chars.AsSpan(0, filled), bytes, out var written))
                {
                    throw new InvalidDataException("The provider's base64 output is malformed.");
                }

                total += written;
                if (total > maxBytes)
                {
                    throw new InvalidDataException($"The output exceeds the {maxBytes} byte limit.");
                }

                await destination.WriteAsync(bytes.AsMemory(0, written), ct);
                filled = 0;
            }
        }
    }
}

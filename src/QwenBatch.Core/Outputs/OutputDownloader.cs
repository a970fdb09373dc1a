using QwenBatch.Jobs;

namespace QwenBatch.Outputs;

/// <summary>
/// Fetches one provider output into a folder: streamed to a hidden temporary file, checked, then renamed, so a crash or
/// a cut connection never leaves a partial image under a real name.
/// </summary>
public sealed class OutputDownloader(HttpClient http)
{
    public const long MaxOutputBytes = 100L * 1024 * 1024;

    /// <summary>Writes the output and returns the final file name (its extension comes from the bytes).</summary>
    public async Task<string> DownloadAsync(ProviderOutput output, string directory, string stem, CancellationToken ct)
    {
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{stem}.{Guid.NewGuid():N}.part");
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                if (output.Url is { } url)
                {
                    await CopyUrlAsync(url, file, ct);
                }
                else if (output.Base64 is { } base64)
                {
                    var comma = base64.StartsWith("data:", StringComparison.Ordinal) ? base64.IndexOf(',', StringComparison.Ordinal) : -1;
                    await file.WriteAsync(Convert.FromBase64String(comma >= 0 ? base64[(comma + 1)..] : base64), ct);
                }
                else
                {
                    throw new InvalidDataException("The provider output has neither a URL nor data.");
                }

                await file.FlushAsync(ct);
            }

            var head = new byte[16];
            int read;
            await using (var check = File.OpenRead(temp))
            {
                read = await check.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, ct);
            }

            var extension = ImageFormat.Sniff(head.AsSpan(0, read))
                ?? throw new InvalidDataException("The downloaded output is not an image in a known format.");
            var name = $"{stem}.{extension}";
            File.Move(temp, Path.Combine(directory, name), overwrite: true);
            return name;
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    private async Task CopyUrlAsync(string url, Stream destination, CancellationToken ct)
    {
        var uri = new Uri(url);
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        {
            throw new InvalidDataException($"Output URL scheme '{uri.Scheme}' is not allowed.");
        }

        using var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"Download of {uri.AbsolutePath} answered HTTP {(int)response.StatusCode}", null, response.StatusCode);
        }

        var expected = response.Content.Headers.ContentLength;
        if (expected > MaxOutputBytes)
        {
            throw new InvalidDataException($"The output is {expected} bytes, over the {MaxOutputBytes} byte limit.");
        }

        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[81920];
        long total = 0;
        int n;
        while ((n = await body.ReadAsync(buffer, ct)) > 0)
        {
            total += n;
            if (total > MaxOutputBytes)
            {
                throw new InvalidDataException($"The output exceeds the {MaxOutputBytes} byte limit.");
            }

            await destination.WriteAsync(buffer.AsMemory(0, n), ct);
        }

        if (expected is { } length && total != length)
        {
            throw new IOException($"The download of {uri.AbsolutePath} was truncated: {total} of {length} bytes.");
        }
    }
}

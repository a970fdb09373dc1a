using System.Globalization;
using QwenBatch.Outputs;
using QwenBatch.Providers;

namespace QwenBatch.Manifests;

/// <summary>
/// Checks a manifest's input images before anything is enqueued: local files exist, are an image by their bytes and at
/// most 10 MB; data URIs likewise. Each local file is read once per manifest, however many rows use it.
/// </summary>
internal sealed class InputImages(string baseDir, string? inputRoot = null, bool matchUploadedNames = false)
{
    private const int MaxReferenceChars = 8192;

    private readonly Dictionary<string, Check> _checked = new(StringComparer.Ordinal);

    /// <summary>The outcome for one image: the value to store (an absolute path for local files), an error or a warning.</summary>
    public readonly record struct Check(string Value, string? Error, string? Warning);

    public Check Inspect(string image)
    {
        if (image.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            return DataUri(image);
        }

        if (EditRequestBuilder.IsRemote(image))
        {
            return image.Length > MaxReferenceChars
                ? new Check(image, $"is a URL of {image.Length} characters; expected at most {MaxReferenceChars}", null)
                : new Check(image, null, null);
        }

        if (image.Length > MaxReferenceChars || image.AsSpan().IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            return new Check(image, $"'{Shorten(image)}' is not a usable file path; expected a path relative to the manifest, or an http(s) URL", null);
        }

        if (inputRoot is not null && Confined(image) is { } refused)
        {
            return refused;
        }

        var full = Path.GetFullPath(Path.Combine(inputRoot ?? baseDir, image));
        if (matchUploadedNames && inputRoot is not null && !File.Exists(full) && Path.Combine(Path.GetFullPath(inputRoot), Path.GetFileName(full)) is var uploaded && File.Exists(uploaded))
        {
            full = uploaded;
        }
        if (!_checked.TryGetValue(full, out var check))
        {
            check = LocalFile(image, full);
            _checked[full] = check;
        }

        return check;
    }

    /// <summary>An error when a local path leaves the input root (or any local path when there is none); null when inside.</summary>
    private Check? Confined(string image)
    {
        if (inputRoot!.Length == 0)
        {
            return new Check(image, $"'{Shorten(image)}' is a local path, and no input root is configured (Dashboard:InputRoot); expected an http(s) URL or a data URI", null);
        }

        var root = Path.GetFullPath(inputRoot);
        var full = Path.GetFullPath(Path.Combine(root, image));
        var inside = full.StartsWith(Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

        // A link inside the root (the file, or any folder on the way to it) could point anywhere: the path with every link
        // followed must be inside too.
        if (inside)
        {
            try
            {
                inside = Paths.ConfinedPath.IsInside(root, full);
            }
            catch (IOException)
            {
                inside = false;
            }
        }

        return inside ? null : new Check(image, $"'{Shorten(image)}' is outside the input root; expected a path inside Dashboard:InputRoot, an http(s) URL or a data URI", null);
    }

    private static Check LocalFile(string image, string full)
    {
        // For a link, FileInfo.Length is the link's own size, not the image's: measure what it points at.
        var info = new FileInfo(full);
        if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
        {
            info = target;
        }

        if (!info.Exists)
        {
            return new Check(full, $"'{image}' does not exist (looked for {full}); expected a file path relative to the manifest, or an http(s) URL", null);
        }

        if (info.Length > ManifestFields.MaxImageBytes)
        {
            return new Check(full, $"'{image}' is {Megabytes(info.Length)}; expected at most 10 MB", null);
        }

        byte[] head;
        try
        {
            using var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
            head = new byte[(int)Math.Min(info.Length, ImageDimensions.HeadBytes)];
            stream.ReadExactly(head);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Check(full, $"'{image}' cannot be read: {ex.Message}", null);
        }

        return Bytes(image, full, head);
    }

    private static Check Bytes(string image, string value, ReadOnlySpan<byte> head)
    {
        if (ImageFormat.Sniff(head) is null)
        {
            return new Check(value, $"'{Shorten(image)}' is not an image by its bytes; expected JPG, PNG, BMP, TIFF, WEBP or GIF", null);
        }

        if (ImageDimensions.Read(head) is var (w, h) && (w < ManifestFields.MinImageSide || h < ManifestFields.MinImageSide || w > ManifestFields.MaxImageSide || h > ManifestFields.MaxImageSide))
        {
            return new Check(value, null, string.Create(CultureInfo.InvariantCulture,
                $"'{Shorten(image)}' is {w}x{h} px; the provider recommends {ManifestFields.MinImageSide} to {ManifestFields.MaxImageSide} px per side"));
        }

        return new Check(value, null, null);
    }

    private static Check DataUri(string image)
    {
        var comma = image.IndexOf(',', StringComparison.Ordinal);
        if (comma < 0 || !image.AsSpan(0, comma).EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            return new Check(image, "is a data URI without base64 data; expected data:image/png;base64,…", null);
        }

        var payload = image.AsSpan(comma + 1);
        if (payload.Length / 4L * 3 > ManifestFields.MaxImageBytes)
        {
            return new Check(image, $"is a data URI of about {Megabytes(payload.Length / 4L * 3)}; expected at most 10 MB", null);
        }

        // Enough of the start to sniff the format and read the size.
        var sample = payload[..Math.Min(payload.Length, ImageDimensions.HeadBytes / 3 * 4)];
        var head = new byte[sample.Length / 4 * 3 + 3];
        if (!Convert.TryFromBase64Chars(sample[..(sample.Length / 4 * 4)], head, out var written))
        {
            return new Check(image, "is a data URI whose data is not base64; expected data:image/png;base64,…", null);
        }

        return Bytes("data URI", image, head.AsSpan(0, written));
    }

    private static string Megabytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0 / 1024.0:0.0} MB");

    private static string Shorten(string text) => text.Length <= 120 ? text : text[..117] + "...";
}

using System.Collections.Concurrent;

namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>
/// The files uploaded to the simulator's WaveSpeed media API, kept in memory for as long as WaveSpeed keeps uploads
/// (7 days, on the simulator's clock), and the upload tickets the official SDK asks for before it PUTs the bytes.
/// </summary>
internal sealed class UploadShelf(TimeProvider time)
{
    /// <summary>WaveSpeed's documented retention of uploaded files.</summary>
    public static readonly TimeSpan KeptFor = TimeSpan.FromDays(7);

    /// <summary>WaveSpeed's documented limit for images.</summary>
    public const long MaxImageBytes = 20L * 1024 * 1024;

    public const string FilesPath = "/_sim/uploads";

    private readonly ConcurrentDictionary<string, StoredUpload> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, UploadTicket> _tickets = new(StringComparer.Ordinal);
    private long _uploads;

    /// <summary>Files stored (each upload counts, the same bytes uploaded twice count twice).</summary>
    public long Uploads => Interlocked.Read(ref _uploads);

    /// <summary>A new id and the file name as it will appear in the URL (only URL-safe characters kept).</summary>
    public static (string Id, string Name) NewAddress(string? fileName)
    {
        var name = new string((Path.GetFileName(fileName) ?? "").Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_').ToArray());
        return (Guid.NewGuid().ToString("N"), name.Trim('.') is { Length: > 0 } safe ? safe : "file");
    }

    public void Put(string id, string name, byte[] bytes, string contentType)
    {
        var now = time.GetUtcNow();
        foreach (var old in _files.Where(f => now - f.Value.StoredAt >= KeptFor))
            _files.TryRemove(old.Key, out _);
        _files[id] = new StoredUpload(name, bytes, contentType, now);
        Interlocked.Increment(ref _uploads);
    }

    /// <summary>The file at <paramref name="id"/>/<paramref name="name"/>, unless it never existed or WaveSpeed would have deleted it.</summary>
    public StoredUpload? Find(string id, string name) =>
        _files.TryGetValue(id, out var file) && file.Name == name && time.GetUtcNow() - file.StoredAt < KeptFor ? file : null;

    /// <summary>Whether <paramref name="url"/> names a stored upload of this simulator (seen at <paramref name="host"/>).</summary>
    public bool IsOwnUrl(string url, string host, out bool stored)
    {
        stored = false;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !string.Equals(uri.Authority, host, StringComparison.OrdinalIgnoreCase)
            || !uri.AbsolutePath.StartsWith(FilesPath + "/", StringComparison.Ordinal))
            return false;
        var parts = uri.AbsolutePath[(FilesPath.Length + 1)..].Split('/');
        stored = parts.Length == 2 && Find(parts[0], parts[1]) is not null;
        return true;
    }

    public void Ticket(string id, UploadTicket ticket) => _tickets[id] = ticket;

    /// <summary>Takes the ticket for <paramref name="id"/>/<paramref name="name"/>: each ticket admits one PUT.</summary>
    public UploadTicket? Redeem(string id, string name) =>
        _tickets.TryGetValue(id, out var found) && found.Name == name && _tickets.TryRemove(id, out _) ? found : null;
}

internal sealed record StoredUpload(string Name, byte[] Bytes, string ContentType, DateTimeOffset StoredAt);

/// <summary>What the SDK announced before sending the bytes.</summary>
internal sealed record UploadTicket(string Name, long Size);

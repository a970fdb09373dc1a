namespace QwenBatch.Storage;

/// <summary>
/// Local input images uploaded to a provider, by content hash: the URL one upload gave, shared by every edit and process
/// on the store until it nears the provider's expiry, and the leased claim that lets one process at a time upload an image.
/// </summary>
public interface IUploadStore
{
    /// <summary>
    /// In one guarded write: a URL usable for at least <see cref="UploadClaimRequest.Margin"/> more is returned as it is;
    /// otherwise the caller claims the upload when no live claim stands (none yet, released, or its lease ended);
    /// otherwise the other's claim is returned with the end of its lease.
    /// </summary>
    Task<UploadLookup> AcquireUploadAsync(UploadClaimRequest request, CancellationToken ct);

    /// <summary>
    /// Records the URL an upload gave and when the provider deletes the file, and ends the owner's claim. A URL that
    /// expires sooner than the one already recorded does not replace it.
    /// </summary>
    Task RecordUploadAsync(UploadRecord record, CancellationToken ct);

    /// <summary>Ends <paramref name="owner"/>'s claim without a URL (its upload failed), so the next caller may try.</summary>
    Task ReleaseUploadAsync(string provider, string contentHash, string owner, CancellationToken ct);
}

/// <summary>A claim to ask for: whose it is, how long it holds, and how long before expiry a URL stops being handed out.</summary>
public sealed record UploadClaimRequest(string Provider, string ContentHash, string Owner, TimeSpan Lease, TimeSpan Margin);

/// <summary>What an upload gave: the provider's URL for the file, and when the provider deletes it.</summary>
public sealed record UploadRecord(string Provider, string ContentHash, string Owner, string Url, DateTimeOffset ExpiresAt);

/// <summary>The answer to <see cref="IUploadStore.AcquireUploadAsync"/>.</summary>
public abstract record UploadLookup
{
    private UploadLookup()
    {
    }

    /// <summary>Uploaded already, and usable for at least the margin asked.</summary>
    public sealed record Live(string Url, DateTimeOffset ExpiresAt) : UploadLookup;

    /// <summary>The caller holds the claim: it uploads, then records the URL or releases the claim.</summary>
    public sealed record Claimed : UploadLookup
    {
        public static Claimed Instance { get; } = new();
    }

    /// <summary>Another caller is uploading it; its claim lapses at <paramref name="LeaseEnds"/> if it neither records nor releases.</summary>
    public sealed record Busy(string Owner, DateTimeOffset LeaseEnds) : UploadLookup;
}

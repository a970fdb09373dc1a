using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>Input images uploaded to a provider (IUploadStore): one upload per image content, claimed under a lease.</summary>
public sealed partial class SqliteStore
{
    public async Task<UploadLookup> AcquireUploadAsync(UploadClaimRequest request, CancellationToken ct)
    {
        // Read and claim inside one immediate transaction: SQLite's write lock keeps what was read true until the commit.
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var now = _time.GetUtcNow();
        await using var read = Command(connection, tx,
            "SELECT url, expires_at, claimed_by, claim_expires_at FROM input_uploads WHERE provider = @provider AND content_hash = @hash",
            ("provider", request.Provider), ("hash", request.ContentHash));
        var rows = await ListAsync(read, r => (Url: r.IsDBNull(0) ? null : r.GetString(0), ExpiresAt: Dialect.NullableTime(r, 1),
            Owner: r.IsDBNull(2) ? null : r.GetString(2), LeaseEnds: Dialect.NullableTime(r, 3)), ct);
        if (rows.Count == 1 && rows[0].Url is { } url && rows[0].ExpiresAt > now + request.Margin)
        {
            return new UploadLookup.Live(url, rows[0].ExpiresAt!.Value);
        }

        if (rows.Count == 1 && rows[0].Owner is { } owner && rows[0].LeaseEnds > now)
        {
            return new UploadLookup.Busy(owner, rows[0].LeaseEnds!.Value);
        }

        await ExecuteAsync(connection, tx,
            """
            INSERT INTO input_uploads (provider, content_hash, claimed_by, claim_expires_at) VALUES (@provider, @hash, @owner, @lease_end)
            ON CONFLICT (provider, content_hash) DO UPDATE SET claimed_by = excluded.claimed_by, claim_expires_at = excluded.claim_expires_at
            """, ct, ("provider", request.Provider), ("hash", request.ContentHash), ("owner", request.Owner), ("lease_end", Ms(now + request.Lease)));
        await tx.CommitAsync(ct);
        return UploadLookup.Claimed.Instance;
    }

    public async Task RecordUploadAsync(UploadRecord record, CancellationToken ct)
    {
        // As on PostgreSQL: the URL that lives longer stays, and only the recorder's own claim ends.
        await using var connection = await OpenAsync(ct);
        await ExecuteAsync(connection, null,
            """
            INSERT INTO input_uploads AS u (provider, content_hash, url, expires_at, uploaded_at)
            VALUES (@provider, @hash, @url, @expires_at, @now)
            ON CONFLICT (provider, content_hash) DO UPDATE SET
                url = CASE WHEN u.expires_at IS NULL OR u.expires_at < excluded.expires_at THEN excluded.url ELSE u.url END,
                uploaded_at = CASE WHEN u.expires_at IS NULL OR u.expires_at < excluded.expires_at THEN excluded.uploaded_at ELSE u.uploaded_at END,
                expires_at = max(coalesce(u.expires_at, 0), excluded.expires_at),
                claimed_by = CASE WHEN u.claimed_by = @owner THEN NULL ELSE u.claimed_by END,
                claim_expires_at = CASE WHEN u.claimed_by = @owner THEN NULL ELSE u.claim_expires_at END
            """, ct, ("provider", record.Provider), ("hash", record.ContentHash), ("owner", record.Owner), ("url", record.Url),
            ("expires_at", Ms(record.ExpiresAt)), ("now", NowMs()));
    }

    public async Task ReleaseUploadAsync(string provider, string contentHash, string owner, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await ExecuteAsync(connection, null,
            "UPDATE input_uploads SET claimed_by = NULL, claim_expires_at = NULL WHERE provider = @provider AND content_hash = @hash AND claimed_by = @owner",
            ct, ("provider", provider), ("hash", contentHash), ("owner", owner));
    }
}

using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>Input images uploaded to a provider (IUploadStore): one upload per image content, claimed under a lease.</summary>
public sealed partial class PostgresStore
{
    /// <summary>Rounds of claim-then-read before giving up; more than one only when a concurrent writer's row was not yet visible.</summary>
    private const int UploadAcquireRounds = 5;

    public async Task<UploadLookup> AcquireUploadAsync(UploadClaimRequest request, CancellationToken ct)
    {
        for (var round = 1; ; round++)
        {
            // The claim is one guarded upsert: it takes the row only when no usable URL and no live claim stand, whatever
            // another process wrote a moment before (ON CONFLICT re-checks its WHERE on the newest row version). The read
            // beside it uses the statement's snapshot, which can miss a row a concurrent process committed meanwhile; then
            // neither a claim nor a reason shows, and the round is repeated.
            await using var command = _dataSource.CreateCommand(
                """
                WITH claim AS (
                    INSERT INTO input_uploads AS u (provider, content_hash, claimed_by, claim_expires_at)
                    VALUES (@provider, @hash, @owner, @lease_end)
                    ON CONFLICT (provider, content_hash) DO UPDATE SET claimed_by = excluded.claimed_by, claim_expires_at = excluded.claim_expires_at
                    WHERE (u.url IS NULL OR u.expires_at <= @usable_after) AND (u.claimed_by IS NULL OR u.claim_expires_at <= @now)
                    RETURNING 1
                )
                SELECT EXISTS (SELECT 1 FROM claim), u.url, u.expires_at, u.claimed_by, u.claim_expires_at
                FROM (SELECT 1) one LEFT JOIN input_uploads u ON u.provider = @provider AND u.content_hash = @hash
                """);
            var now = _time.GetUtcNow();
            command.Parameters.AddWithValue("provider", request.Provider);
            command.Parameters.AddWithValue("hash", request.ContentHash);
            command.Parameters.AddWithValue("owner", request.Owner);
            command.Parameters.AddWithValue("now", now);
            command.Parameters.AddWithValue("lease_end", now + request.Lease);
            command.Parameters.AddWithValue("usable_after", now + request.Margin);
            var row = (await ListAsync(command, r => (Claimed: r.GetBoolean(0), Url: r.IsDBNull(1) ? null : r.GetString(1),
                ExpiresAt: Dialect.NullableTime(r, 2), Owner: r.IsDBNull(3) ? null : r.GetString(3), LeaseEnds: Dialect.NullableTime(r, 4)), ct)).Single();
            if (row.Claimed)
            {
                return UploadLookup.Claimed.Instance;
            }

            if (row.Url is { } url && row.ExpiresAt > now + request.Margin)
            {
                return new UploadLookup.Live(url, row.ExpiresAt.Value);
            }

            if (row.Owner is { } owner && row.LeaseEnds > now)
            {
                return new UploadLookup.Busy(owner, row.LeaseEnds.Value);
            }

            if (round == UploadAcquireRounds)
            {
                throw new InvalidOperationException($"The upload of {request.ContentHash} could be neither claimed nor read after {round} rounds.");
            }
        }
    }

    public async Task RecordUploadAsync(UploadRecord record, CancellationToken ct)
    {
        // A process whose lease ran out may record after another's upload: the URL that lives longer stays, and only the
        // recorder's own claim ends.
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO input_uploads AS u (provider, content_hash, url, expires_at, uploaded_at)
            VALUES (@provider, @hash, @url, @expires_at, @now)
            ON CONFLICT (provider, content_hash) DO UPDATE SET
                url = CASE WHEN u.expires_at IS NULL OR u.expires_at < excluded.expires_at THEN excluded.url ELSE u.url END,
                uploaded_at = CASE WHEN u.expires_at IS NULL OR u.expires_at < excluded.expires_at THEN excluded.uploaded_at ELSE u.uploaded_at END,
                expires_at = greatest(u.expires_at, excluded.expires_at),
                claimed_by = CASE WHEN u.claimed_by = @owner THEN NULL ELSE u.claimed_by END,
                claim_expires_at = CASE WHEN u.claimed_by = @owner THEN NULL ELSE u.claim_expires_at END
            """);
        command.Parameters.AddWithValue("provider", record.Provider);
        command.Parameters.AddWithValue("hash", record.ContentHash);
        command.Parameters.AddWithValue("owner", record.Owner);
        command.Parameters.AddWithValue("url", record.Url);
        command.Parameters.AddWithValue("expires_at", record.ExpiresAt);
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task ReleaseUploadAsync(string provider, string contentHash, string owner, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "UPDATE input_uploads SET claimed_by = NULL, claim_expires_at = NULL WHERE provider = @provider AND content_hash = @hash AND claimed_by = @owner");
        command.Parameters.AddWithValue("provider", provider);
        command.Parameters.AddWithValue("hash", contentHash);
        command.Parameters.AddWithValue("owner", owner);
        await command.ExecuteNonQueryAsync(ct);
    }
}

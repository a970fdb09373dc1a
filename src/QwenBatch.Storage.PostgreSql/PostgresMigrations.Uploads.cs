namespace QwenBatch.Storage.PostgreSql;

/// <summary>Migration 14: local input images uploaded to a provider once, by content hash.</summary>
internal static partial class PostgresMigrations
{
    private static (int Version, string Name, string Sql)[] Uploads() =>
    [
        (14, "input images uploaded to a provider, by content hash", """
            -- One row per provider and image content: the URL its upload gave and when the provider deletes the file, or
            -- the claim of the process uploading it now (a lease, so a process that died leaves it to the next).
            CREATE TABLE input_uploads (
                provider         text NOT NULL,
                content_hash     text NOT NULL,
                url              text,
                expires_at       timestamptz,
                uploaded_at      timestamptz,
                claimed_by       text,
                claim_expires_at timestamptz,
                PRIMARY KEY (provider, content_hash),
                CHECK ((url IS NULL) = (expires_at IS NULL)),
                CHECK ((claimed_by IS NULL) = (claim_expires_at IS NULL))
            );
            """),
    ];
}

namespace QwenBatch.Storage.Sqlite;

/// <summary>Migration 14: local input images uploaded to a provider once, by content hash.</summary>
internal static partial class SqliteMigrations
{
    private static (int Version, string Name, string Sql)[] Uploads() =>
    [
        (14, "input images uploaded to a provider, by content hash", """
            -- As on PostgreSQL: the URL an image's upload gave and when the provider deletes it, or the leased claim of the
            -- process uploading it now. Times are unix milliseconds.
            CREATE TABLE input_uploads (
                provider         TEXT NOT NULL,
                content_hash     TEXT NOT NULL,
                url              TEXT,
                expires_at       INTEGER,
                uploaded_at      INTEGER,
                claimed_by       TEXT,
                claim_expires_at INTEGER,
                PRIMARY KEY (provider, content_hash),
                CHECK ((url IS NULL) = (expires_at IS NULL)),
                CHECK ((claimed_by IS NULL) = (claim_expires_at IS NULL))
            );
            """),
    ];
}

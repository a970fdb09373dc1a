namespace QwenBatch.Storage.Sqlite;

/// <summary>Migration 15: provider webhook deliveries seen, and finding a parked edit by its provider task.</summary>
internal static partial class SqliteMigrations
{
    private static (int Version, string Name, string Sql)[] Webhooks() =>
    [
        (15, "provider webhook deliveries, and parked edits by request id", """
            -- As on PostgreSQL: recent delivery ids, so a replay changes nothing. Times are unix milliseconds.
            CREATE TABLE webhook_deliveries (
                provider    TEXT NOT NULL,
                delivery_id TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                PRIMARY KEY (provider, delivery_id)
            );
            CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
            CREATE INDEX jobs_at_provider_request ON jobs (provider, request_id) WHERE state = 'at_provider';
            """),
    ];
}

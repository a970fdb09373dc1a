namespace QwenBatch.Storage.PostgreSql;

/// <summary>Migration 15: provider webhook deliveries seen, and finding a parked edit by its provider task.</summary>
internal static partial class PostgresMigrations
{
    private static (int Version, string Name, string Sql)[] Webhooks() =>
    [
        (15, "provider webhook deliveries, and parked edits by request id", """
            -- The ids of recent deliveries, so a replayed one changes nothing; rows older than a delivery's maximum age go.
            CREATE TABLE webhook_deliveries (
                provider    text NOT NULL,
                delivery_id text NOT NULL,
                received_at timestamptz NOT NULL,
                PRIMARY KEY (provider, delivery_id)
            );
            CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

            -- A delivery names the provider's task: only parked edits are looked up, so the index stays as small as they are few.
            CREATE INDEX jobs_at_provider_request ON jobs (provider, request_id) WHERE state = 'at_provider';
            """),
    ];
}

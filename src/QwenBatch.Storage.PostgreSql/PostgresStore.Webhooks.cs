using NpgsqlTypes;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>Provider webhook deliveries (IWebhookStore): replays refused by id, parked edits found by request id.</summary>
public sealed partial class PostgresStore
{
    public async Task<bool> RecordDeliveryAsync(string provider, string deliveryId, DateTimeOffset forgetBefore, CancellationToken ct)
    {
        // One statement: the expired ids go, and the insert that finds its id taken by a live row returns nothing. The
        // statement's delete is not visible to its own insert, so an expired row of the same id is taken over instead.
        await using var command = _dataSource.CreateCommand(
            """
            WITH forgotten AS (DELETE FROM webhook_deliveries WHERE received_at < @forget_before AND NOT (provider = @provider AND delivery_id = @id))
            INSERT INTO webhook_deliveries AS d (provider, delivery_id, received_at) VALUES (@provider, @id, @now)
            ON CONFLICT (provider, delivery_id) DO UPDATE SET received_at = excluded.received_at WHERE d.received_at < @forget_before
            RETURNING 1
            """);
        command.Parameters.AddWithValue("provider", provider);
        command.Parameters.AddWithValue("id", deliveryId);
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        command.Parameters.AddWithValue("forget_before", forgetBefore);
        return await command.ExecuteScalarAsync(ct) is not null;
    }

    public async Task<IReadOnlyList<EditRecord>> FindAtProviderAsync(string provider, IReadOnlyList<string> requestIds, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"SELECT {EditColumns} FROM jobs WHERE state = 'at_provider' AND provider = @provider AND request_id = ANY(@ids)");
        command.Parameters.AddWithValue("provider", provider);
        command.Parameters.Add(new Npgsql.NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = requestIds.ToArray() });
        return await ListAsync(command, r => ReadEdit(r, Dialect), ct);
    }
}

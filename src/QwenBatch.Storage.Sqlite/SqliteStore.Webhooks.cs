using QwenBatch.Edits;

namespace QwenBatch.Storage.Sqlite;

/// <summary>Provider webhook deliveries (IWebhookStore): replays refused by id, parked edits found by request id.</summary>
public sealed partial class SqliteStore
{
    public async Task<bool> RecordDeliveryAsync(string provider, string deliveryId, DateTimeOffset forgetBefore, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        await ExecuteAsync(connection, tx, "DELETE FROM webhook_deliveries WHERE received_at < @forget_before", ct, ("forget_before", Ms(forgetBefore)));
        var added = await ExecuteAsync(connection, tx,
            "INSERT INTO webhook_deliveries (provider, delivery_id, received_at) VALUES (@provider, @id, @now) ON CONFLICT (provider, delivery_id) DO NOTHING",
            ct, ("provider", provider), ("id", deliveryId), ("now", NowMs()));
        await tx.CommitAsync(ct);
        return added == 1;
    }

    public async Task<IReadOnlyList<EditRecord>> FindAtProviderAsync(string provider, IReadOnlyList<string> requestIds, CancellationToken ct)
    {
        if (requestIds.Count == 0)
        {
            return [];
        }

        var parameters = requestIds.Select((id, i) => ($"r{i}", (object?)id)).Prepend(("provider", provider)).ToArray();
        var list = string.Join(", ", requestIds.Select((_, i) => $"@r{i}"));
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            $"SELECT {SqliteEditColumns} FROM jobs WHERE state = 'at_provider' AND provider = @provider AND request_id IN ({list})", parameters);
        return await ReadEditsAsync(command, ct);
    }
}

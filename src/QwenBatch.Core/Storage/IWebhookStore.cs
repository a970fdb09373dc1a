using QwenBatch.Edits;

namespace QwenBatch.Storage;

/// <summary>
/// What a provider's webhook delivery needs from the store: whether its id was seen before (a replay changes nothing), and
/// the edits parked at the provider under the request ids it names.
/// </summary>
public interface IWebhookStore
{
    /// <summary>
    /// Records a delivery's id; true the first time it is seen, false for a replay. Ids received before
    /// <paramref name="forgetBefore"/> are forgotten in the same call: a delivery that old is refused by its timestamp.
    /// </summary>
    Task<bool> RecordDeliveryAsync(string provider, string deliveryId, DateTimeOffset forgetBefore, CancellationToken ct);

    /// <summary>The edits at the provider whose provider task is one of <paramref name="requestIds"/>.</summary>
    Task<IReadOnlyList<EditRecord>> FindAtProviderAsync(string provider, IReadOnlyList<string> requestIds, CancellationToken ct);
}

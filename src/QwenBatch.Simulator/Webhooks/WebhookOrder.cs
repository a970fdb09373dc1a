using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Webhooks;

/// <summary>A webhook a submit asked for: where to POST, and how to write the task's result once it has ended.</summary>
internal sealed record WebhookOrder(SimTicket Ticket, string RequestId, Uri Target, Func<byte[]> BodyAtEnd);

/// <summary>
/// One event, fixed when its task ends: the id and body every attempt (and a duplicate's) repeats, re-signed with the
/// time of each attempt. <paramref name="BadSignature"/> spoils the signature of every attempt.
/// </summary>
internal sealed record WebhookEvent(string Id, string RequestId, Uri Target, byte[] Body, bool BadSignature);

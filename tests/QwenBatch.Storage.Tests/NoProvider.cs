using QwenBatch.Providers;

namespace QwenBatch.Storage.Tests;

/// <summary>A provider client for the feed policy's accounts: the policy reads only their options, and nothing here calls a provider.</summary>
internal sealed class NoProvider : IImageEditProvider
{
    public static NoProvider Instance { get; } = new();

    public Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct) => throw new NotSupportedException("The store tests never submit.");

    public Task<PollResult> PollAsync(string requestId, CancellationToken ct) => throw new NotSupportedException("The store tests never poll.");

    public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct) => throw new NotSupportedException("The store tests never cancel at a provider.");
}

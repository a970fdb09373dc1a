using Hangfire;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Jobs;

/// <summary>
/// Who is sending an edit's submit, and whether it may still be at it: a run of the edit's job that finds it submitting
/// sends it again only when the server that moved it there has stopped beating, or when even the longest POST the
/// provider's pipeline can make (every attempt with its delays) would be over.
/// </summary>
public sealed class Submitters(IEditStore edits, JobStorage storage, ProviderRegistry providers, HangfireOptions options, TimeProvider time)
{
    /// <summary>How long a run that found the submit possibly still on its way waits before it looks again.</summary>
    public static readonly TimeSpan LookAgain = TimeSpan.FromSeconds(10);

    /// <summary>Why the submit may still be on its way, or null when whoever sent it is gone.</summary>
    public async Task<string?> StillSendingAsync(EditRecord edit, CancellationToken ct)
    {
        var account = providers.Get(edit.Provider).Options;
        var longest = account.LongestCall;
        var since = time.GetUtcNow() - edit.UpdatedAt;
        if (since > longest)
        {
            return null;
        }

        var sender = (await edits.GetHistoryAsync(edit.Id, ct)).LastOrDefault(h => h.To == EditState.Submitting)?.ServerId;
        var server = sender is null ? null : storage.GetMonitoringApi().Servers().FirstOrDefault(s => s.Name == sender);
        if (server?.Heartbeat is not { } beat || time.GetUtcNow().UtcDateTime - beat > options.HeartbeatInterval * 3)
        {
            return null;
        }

        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"its submit, sent {since.TotalSeconds:0} s ago by server {sender}, may still be on its way; looking again in {LookAgain.TotalSeconds:0} s");
    }
}

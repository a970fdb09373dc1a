using Microsoft.Extensions.Logging;
using QwenBatch.Providers;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Uploads;

/// <summary>
/// The URL of a local input image at a provider that takes uploads: the one recorded in the store while it is usable for
/// <see cref="ProviderOptions.UploadReuseMargin"/> more, else a fresh upload through the account's client (so under the
/// fleet's shared request allowance, its retries and its circuit). Each image is uploaded by one process at a time: the
/// others wait for its URL rather than upload it too.
/// </summary>
public sealed partial class InputUploads(IUploadStore store, TimeProvider time, ILogger<InputUploads> logger)
{
    /// <summary>How often a process waiting for another's upload looks for its URL.</summary>
    public static readonly TimeSpan LookAgain = TimeSpan.FromMilliseconds(250);

    private static readonly string Process = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>
    /// The URL to send <paramref name="image"/> by. A failed upload names the file: refused (a bad file, too large, a
    /// wrong key) it is an <see cref="EditInputException"/> and fails the edit; otherwise a <see cref="ProviderException"/>
    /// of the same kind, which the engine retries or waits out.
    /// </summary>
    public async Task<string> UrlAsync(ProviderAccount account, IInputUploader uploader, LocalImage image, CancellationToken ct)
    {
        var owner = $"{Process}:{Guid.NewGuid():N}";
        var options = account.Options;

        // The lease outlasts the longest upload the account's pipeline can make, so a live claimant never loses it; a
        // claimant that died leaves the image to the next process after it.
        var claim = new UploadClaimRequest(account.Name, image.ContentHash, owner, options.LongestCall + LookAgain, options.UploadReuseMargin);
        while (true)
        {
            switch (await store.AcquireUploadAsync(claim, ct))
            {
                case UploadLookup.Live live:
                    return live.Url;
                case UploadLookup.Busy busy:
                    var wait = busy.LeaseEnds - time.GetUtcNow();
                    await Task.Delay(wait < LookAgain ? (wait > TimeSpan.Zero ? wait : TimeSpan.Zero) : LookAgain, time, ct);
                    continue;
            }

            return await UploadAsync(account, uploader, image, owner, ct);
        }
    }

    private async Task<string> UploadAsync(ProviderAccount account, IInputUploader uploader, LocalImage image, string owner, CancellationToken ct)
    {
        // The provider's clock starts no earlier than the request: expiry counted from before it is on the safe side.
        var started = time.GetUtcNow();
        string url;
        try
        {
            url = await uploader.UploadAsync(image, ct);
        }
        catch (Exception ex) when (ex is ProviderException or OperationCanceledException)
        {
            // Released whatever happened, or the next process would wait out the lease for nothing.
            await store.ReleaseUploadAsync(account.Name, image.ContentHash, owner, CancellationToken.None);
            if (ex is not ProviderException failure)
            {
                throw;
            }

            var what = $"Input image '{image.Path}' could not be uploaded to {account.Name}: {failure.Message}";
            LogUploadFailed(image.Path, account.Name, failure.Message);
            throw failure.Kind switch
            {
                ProviderErrorKind.Rejected or ProviderErrorKind.NotFound => new EditInputException(what, failure),

                // Nothing is paid for an upload, so one whose answer was lost is simply tried again.
                ProviderErrorKind.Uncertain => new ProviderException(ProviderErrorKind.NotAccepted, what, failure.StatusCode, failure.RetryAfter, failure),
                _ => new ProviderException(failure.Kind, what, failure.StatusCode, failure.RetryAfter, failure),
            };
        }

        // Recorded even if the step is being stopped: the upload happened, and its URL spares the next one.
        await store.RecordUploadAsync(new UploadRecord(account.Name, image.ContentHash, owner, url, started + account.Options.UploadKeptFor), CancellationToken.None);
        LogUploaded(image.Path, account.Name, image.Bytes.Length);
        return url;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Uploaded input image {Path} ({Bytes} bytes) to {Provider}; edits needing it send its URL")]
    private partial void LogUploaded(string path, string provider, int bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Input image {Path} could not be uploaded to {Provider}: {Error}")]
    private partial void LogUploadFailed(string path, string provider, string error);
}

using System.Runtime.CompilerServices;
using QwenBatch.Manifests;
using QwenBatch.Storage;

namespace QwenBatch.Batches;

/// <summary>
/// The one way a manifest becomes a batch, shared by the CLI (<c>run</c>, <c>submit</c>), the dashboard's upload and
/// unattended imports (schedules, continuations): one validating pass over the whole file, streamed
/// (<see cref="ManifestPass"/>), whose planned jobs go into the store's one import transaction — live as they are ready,
/// or kept until the pass is over — and the file is read a second time only when a kept pass outgrew its memory bound.
/// </summary>
public static class ManifestImporter
{
    /// <summary>How much the first pass may keep of the planned jobs (their encoded size), so that the import need not read again.</summary>
    public const long DefaultMaxBufferedBytes = 32L * 1024 * 1024;

    /// <summary>
    /// The whole first pass (<see cref="ManifestPass.StartKept"/>), for an import that must wait for the end of the file:
    /// the planned jobs are kept while their encoded form (<see cref="EncodedJobs"/>, about 200 bytes a job) fits in
    /// <paramref name="maxBufferedBytes"/>, and the import (<see cref="ManifestPass.JobsToImport"/>) writes them without
    /// reading, validating and planning the file a second time. Past the bound they are dropped, and the import reads the
    /// file again — memory stays bounded whatever the manifest's size. An import that may start before the end of the file
    /// takes a live pass instead (<see cref="ManifestPass.StartLive"/>). The pass returned is over; dispose it.
    /// </summary>
    public static async Task<ManifestPass> CheckAndPlanAsync(string path, ManifestOptions options, string provider, Action<SkippedJob>? onSkipped = null, long maxBufferedBytes = DefaultMaxBufferedBytes)
    {
        var pass = ManifestPass.StartKept(path, options, provider, maxBufferedBytes, onSkipped: onSkipped);
        try
        {
            await pass.Completion;
            return pass;
        }
        catch
        {
            await pass.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The manifest's valid jobs, read again and planned for the batch's provider. If the file changed since it was
    /// validated and now has errors (and <paramref name="skipInvalid"/> is false), the enumeration throws
    /// <see cref="ManifestChangedException"/> inside the import's transaction, so nothing is enqueued.
    /// </summary>
    public static async IAsyncEnumerable<NewEdit> ValidJobs(
        string path, ManifestOptions options, string provider, bool skipInvalid, [EnumeratorCancellation] CancellationToken ct)
    {
        var stream = ManifestReader.Open(path, options);
        foreach (var job in stream.Jobs())
        {
            ct.ThrowIfCancellationRequested();
            if (!skipInvalid && stream.Diagnostics.ErrorCount > 0)
            {
                break;
            }

            foreach (var newJob in BatchPlanner.Jobs(job, provider))
            {
                yield return newJob;
            }
        }

        if (!skipInvalid && stream.Diagnostics.ErrorCount > 0)
        {
            throw new ManifestChangedException();
        }

        await Task.CompletedTask;
    }
}

/// <summary>The manifest became invalid between validation and import; the import was rolled back.</summary>
public sealed class ManifestChangedException : IOException
{
    public ManifestChangedException()
        : base("The manifest changed while it was imported and is now invalid; nothing was enqueued.")
    {
    }

    public ManifestChangedException(string message)
        : base(message)
    {
    }

    public ManifestChangedException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

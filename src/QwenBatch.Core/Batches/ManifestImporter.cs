using System.Runtime.CompilerServices;
using QwenBatch.Manifests;

namespace QwenBatch.Batches;

/// <summary>
/// The one way a manifest becomes a batch, shared by the CLI (<c>run</c>) and the dashboard's upload: validate the whole
/// file streamed, then read it again into the store's one import transaction.
/// </summary>
public static class ManifestImporter
{
    /// <summary>The first pass: every job enumerated (and refused ones reported), so the diagnostics are complete.</summary>
    public static ManifestStream Check(string path, ManifestOptions options, Action<SkippedJob>? onSkipped = null)
    {
        var stream = ManifestReader.Open(path, options);
        foreach (var _ in stream.Jobs(onSkipped))
        {
        }

        return stream;
    }

    /// <summary>
    /// The manifest's valid jobs, read again and planned for the batch's provider. If the file changed since it was
    /// validated and now has errors (and <paramref name="skipInvalid"/> is false), the enumeration throws
    /// <see cref="ManifestChangedException"/> inside the import's transaction, so nothing is enqueued.
    /// </summary>
    public static async IAsyncEnumerable<NewJob> ValidJobs(
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

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

    /// <summary>How much the first pass may keep of the planned jobs (estimated), so that the import need not read again.</summary>
    public const long DefaultMaxBufferedBytes = 32L * 1024 * 1024;

    /// <summary>
    /// The first pass, which also keeps the planned jobs while they fit in <paramref name="maxBufferedBytes"/> (an
    /// estimate of their size in memory): then the import writes them without reading, validating and planning the file
    /// a second time. Past the bound the kept jobs are dropped at once, and the import reads the file again — memory stays
    /// bounded whatever the manifest's size.
    /// </summary>
    public static CheckedJobs CheckAndPlan(string path, ManifestOptions options, string provider, Action<SkippedJob>? onSkipped = null, long maxBufferedBytes = DefaultMaxBufferedBytes)
    {
        var stream = ManifestReader.Open(path, options);
        List<NewJob>? planned = [];
        var bytes = 0L;
        foreach (var job in stream.Jobs(onSkipped))
        {
            if (planned is null)
            {
                continue;
            }

            foreach (var newJob in BatchPlanner.Jobs(job, provider))
            {
                bytes += EstimatedBytes(newJob);
                planned.Add(newJob);
            }

            if (bytes > maxBufferedBytes)
            {
                planned = null;
            }
        }

        return new CheckedJobs(stream, provider, planned);
    }

    /// <summary>The jobs to import after <see cref="CheckAndPlan"/>: the kept ones, or the file read again.</summary>
    public static IAsyncEnumerable<NewJob> ValidJobs(CheckedJobs check, ManifestOptions options, bool skipInvalid, CancellationToken ct) =>
        check.Planned is { } planned ? Kept(planned, ct) : ValidJobs(check.Stream.Path, options, check.Provider, skipInvalid, ct);

    private static async IAsyncEnumerable<NewJob> Kept(IReadOnlyList<NewJob> jobs, [EnumeratorCancellation] CancellationToken ct)
    {
        for (var i = 0; i < jobs.Count; i++)
        {
            if ((i & 1023) == 0)
            {
                ct.ThrowIfCancellationRequested();
            }

            yield return jobs[i];
        }

        await Task.CompletedTask;
    }

    /// <summary>A rough size of a planned job in memory: its strings (UTF-16) and the objects around them.</summary>
    private static long EstimatedBytes(NewJob job)
    {
        var spec = job.Spec;
        var chars = job.Key.Length + job.ContentHash.Length + job.Provider.Length + spec.Prompt.Length + (spec.NegativePrompt?.Length ?? 0)
            + (spec.Size?.Length ?? 0) + (spec.Output?.Length ?? 0) + (spec.OutputFormat?.Length ?? 0);
        foreach (var image in spec.Images)
        {
            chars += image.Length + 16;
        }

        foreach (var (name, value) in spec.Variables)
        {
            chars += name.Length + value.Length + 24;
        }

        return 512 + (2L * chars);
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

/// <summary>A manifest after its first pass: the diagnostics, and the planned jobs when they fitted in memory.</summary>
/// <param name="Planned">The valid jobs planned for <paramref name="Provider"/>, or null when the import must read the file again.</param>
public sealed record CheckedJobs(ManifestStream Stream, string Provider, IReadOnlyList<NewJob>? Planned);

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

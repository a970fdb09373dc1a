using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using QwenBatch.Storage;
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

    /// <summary>How much the first pass may keep of the planned jobs (their encoded size), so that the import need not read again.</summary>
    public const long DefaultMaxBufferedBytes = 32L * 1024 * 1024;

    /// <summary>Manifest jobs handed from the reading thread to the planning one at a time.</summary>
    private const int HandOff = 256;

    /// <summary>
    /// The first pass, which also keeps the planned jobs while their encoded form (<see cref="EncodedJobs"/>, about 200
    /// bytes a job) fits in <paramref name="maxBufferedBytes"/>: then the import writes them without reading, validating
    /// and planning the file a second time. Past the bound the kept jobs are dropped at once, and the import reads the file
    /// again — memory stays bounded whatever the manifest's size. Reading and validating (this thread) overlap with
    /// planning and encoding (a second one), which cost about as much.
    /// </summary>
    public static CheckedJobs CheckAndPlan(string path, ManifestOptions options, string provider, Action<SkippedJob>? onSkipped = null, long maxBufferedBytes = DefaultMaxBufferedBytes)
    {
        var stream = ManifestReader.Open(path, options);
        using var handOff = new BlockingCollection<ManifestJob[]>(boundedCapacity: 8);
        var planner = Task.Run(() => Plan(handOff, provider, maxBufferedBytes));
        try
        {
            var pending = new List<ManifestJob>(HandOff);
            foreach (var job in stream.Jobs(onSkipped))
            {
                pending.Add(job);
                if (pending.Count == HandOff)
                {
                    handOff.Add([.. pending]);
                    pending.Clear();
                }
            }

            handOff.Add([.. pending]);
        }
        finally
        {
            handOff.CompleteAdding();
        }

        return new CheckedJobs(stream, provider, planner.GetAwaiter().GetResult());
    }

    private static EncodedJobs? Plan(BlockingCollection<ManifestJob[]> handOff, string provider, long maxBufferedBytes)
    {
        using var writer = new EncodedJobs.Writer();
        var keeping = true;
        ExceptionDispatchInfo? failure = null;
        foreach (var jobs in handOff.GetConsumingEnumerable())
        {
            // Whatever happens here, the hand-off is drained to the end: the reading thread must never wait on a full one.
            if (!keeping || failure is not null)
            {
                continue;
            }

            try
            {
                foreach (var job in jobs)
                {
                    foreach (var newJob in BatchPlanner.Jobs(job, provider))
                    {
                        writer.Add(newJob);
                    }
                }
            }
            catch (DuplicateJobKeyException)
            {
                // The validator reports the id; an import (with --skip-invalid) reads the file again and the store refuses it.
                keeping = false;
            }
            catch (Exception ex)
            {
                failure = ExceptionDispatchInfo.Capture(ex);
            }

            keeping &= writer.Bytes <= maxBufferedBytes;
        }

        failure?.Throw();
        return keeping ? writer.Complete() : null;
    }

    /// <summary>The jobs to import after <see cref="CheckAndPlan"/>: the kept ones, or the file read again.</summary>
    public static IAsyncEnumerable<NewJob> ValidJobs(CheckedJobs check, ManifestOptions options, bool skipInvalid, CancellationToken ct) =>
        check.Planned ?? ValidJobs(check.Stream.Path, options, check.Provider, skipInvalid, ct);

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
public sealed record CheckedJobs(ManifestStream Stream, string Provider, EncodedJobs? Planned);

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

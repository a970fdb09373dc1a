using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using QwenBatch.Manifests;
using QwenBatch.Storage;

namespace QwenBatch.Batches;

/// <summary>
/// A manifest's one validating pass, on two threads of its own: one reads and validates (the diagnostics), the other plans
/// the valid jobs and encodes them in chunks (<see cref="EncodedJobs"/>), which costs more; while it is behind, the
/// reading thread plans its next jobs itself instead of waiting, so the two share the work. The chunks go either
/// <b>live</b> to the store's import as they fill, while the pass still reads — the import's transaction then finds out at
/// the end of the jobs whether the manifest was valid, and rolls back if not — or are <b>kept</b> until the pass is over,
/// while they fit a bound, for an import that must wait for the whole file (past the bound the import reads it again).
/// </summary>
public sealed class ManifestPass : IAsyncDisposable
{
    /// <summary>Manifest jobs handed from the reading thread to the planning one at a time.</summary>
    private const int HandOff = 64;

    /// <summary>
    /// Hand-offs the planning thread has not taken yet; beyond this the reading thread plans its next jobs itself, then
    /// waits. The jobs in flight are alive at every collection and are copied by it: 8 hand-offs of 256 jobs made each one
    /// copy 2 MB.
    /// </summary>
    private const int HandOffsInFlight = 2;

    /// <summary>Live chunks (at most about 64 KB each) the import has not taken yet; the planner waits beyond this.</summary>
    private const int LiveChunks = 8;

    /// <summary>
    /// A live pass is <see cref="Started"/> once this many jobs are ready (or sooner, when large jobs fill the chunks the
    /// import has not taken): a smaller manifest is read to its end first.
    /// </summary>
    public const int LiveAfter = EncodedJobs.ChunkSize;

    private readonly ManifestOptions _options;
    private readonly string _provider;
    private readonly bool _skipInvalid;
    private readonly long? _keepAtMost;
    private readonly Channel<(byte[] Json, int Jobs)> _chunks = Channel.CreateBounded<(byte[] Json, int Jobs)>(
        new BoundedChannelOptions(LiveChunks) { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private EncodedJobs? _kept;
    private int _sent;
    private int _taken;
    private int _plannedWhileReading;
    private bool _disposed;

    private ManifestPass(string path, ManifestOptions options, string provider, bool skipInvalid, long? keepAtMost)
    {
        Stream = ManifestReader.Open(path, options);
        _options = options;
        _provider = provider;
        _skipInvalid = skipInvalid;
        _keepAtMost = keepAtMost;
    }

    public ManifestStream Stream { get; }

    /// <summary>The whole file read and its jobs planned, so the diagnostics are complete; faults if planning failed.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>
    /// A live pass has <see cref="LiveAfter"/> jobs ready for the import before reaching the end of the file, or the pass
    /// is over — whichever comes first. A smaller manifest is always read to its end first.
    /// </summary>
    public Task Started => Task.WhenAny(_started.Task, Completion);

    /// <summary>
    /// Starts a pass whose jobs go to the import as they are planned (<see cref="Planned"/>). The planner waits while the
    /// import has not taken them, so memory stays bounded whatever the manifest's size.
    /// </summary>
    /// <param name="skipInvalid">Whether the valid jobs of an invalid manifest may be imported (<c>--skip-invalid</c>).</param>
    public static ManifestPass StartLive(string path, ManifestOptions options, string provider, bool skipInvalid, Action<SkippedJob>? onSkipped = null) =>
        Start(new ManifestPass(path, options, provider, skipInvalid, keepAtMost: null), onSkipped);

    /// <summary>Starts a pass that keeps its planned jobs until it is over, while their encoded size fits <paramref name="keepAtMost"/>.</summary>
    /// <param name="skipInvalid">Whether the file read again (past the bound) yields the valid jobs of an invalid manifest.</param>
    public static ManifestPass StartKept(string path, ManifestOptions options, string provider, long keepAtMost, bool skipInvalid = false, Action<SkippedJob>? onSkipped = null) =>
        Start(new ManifestPass(path, options, provider, skipInvalid, keepAtMost), onSkipped);

    /// <summary>
    /// The jobs for the store's import. A live pass's come as they are planned and are enumerated once; when they end, the
    /// pass is over, and if the manifest turned out invalid (and <c>--skip-invalid</c> does not apply, or left no job) the
    /// enumeration throws <see cref="ManifestInvalidException"/> inside the import's transaction, so nothing is enqueued.
    /// A kept pass's are there once it is over — or null, when they outgrew the bound and the import must read the file again.
    /// </summary>
    public EncodedJobs? Planned => _keepAtMost is null
        ? EncodedJobs.Live(LiveChunksAsync)
        : Completion.IsCompletedSuccessfully ? _kept : throw new InvalidOperationException("A kept pass's jobs are there once it is over.");

    /// <summary>
    /// What the store's import takes: the <see cref="Planned"/> jobs, or — when a kept pass dropped them — the file read
    /// again (<see cref="ManifestImporter.ValidJobs(string, ManifestOptions, string, bool, CancellationToken)"/>).
    /// </summary>
    public IAsyncEnumerable<NewEdit> JobsToImport(CancellationToken ct) =>
        Planned ?? ManifestImporter.ValidJobs(Stream.Path, _options, _provider, _skipInvalid, ct);

    /// <summary>Manifest jobs the reading thread planned itself so far, because the planning thread was behind.</summary>
    internal int PlannedWhileReading => Volatile.Read(ref _plannedWhileReading);

    /// <summary>Whether a live pass's jobs may be imported (so far): valid, or with <c>--skip-invalid</c> at least one valid job.</summary>
    private bool Acceptable => Stream.Diagnostics.ErrorCount == 0 || (_skipInvalid && Stream.JobCount > 0);

    /// <summary>Stops the pass if it is still reading (an import that failed or was cancelled) and waits for its threads.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stop.CancelAsync();
        try
        {
            await Completion;
        }
        catch (Exception)
        {
            // Whoever took the jobs (the import, or CheckAndPlanAsync) has seen this through Completion, or stopped the pass.
        }

        _stop.Dispose();
    }

    private static ManifestPass Start(ManifestPass pass, Action<SkippedJob>? onSkipped)
    {
        var handOff = new BlockingCollection<Block>(boundedCapacity: HandOffsInFlight);
        var reading = Task.Factory.StartNew(() => pass.Read(handOff, onSkipped), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var planning = Task.Factory.StartNew(() => pass.Plan(handOff), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        pass.Completion = WhenBothAsync(reading, planning, handOff);
        return pass;
    }

    private static async Task WhenBothAsync(Task reading, Task planning, BlockingCollection<Block> handOff)
    {
        try
        {
            await Task.WhenAll(reading, planning);
        }
        finally
        {
            handOff.Dispose();
        }
    }

    private void Read(BlockingCollection<Block> handOff, Action<SkippedJob>? onSkipped)
    {
        try
        {
            var pending = new List<ManifestJob>(HandOff);
            foreach (var job in Stream.Jobs(onSkipped))
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }

                pending.Add(job);
                if (pending.Count == HandOff)
                {
                    HandOver(handOff, [.. pending]);
                    pending.Clear();
                }
            }

            HandOver(handOff, [.. pending]);
        }
        finally
        {
            handOff.CompleteAdding();
        }
    }

    /// <summary>
    /// Hands jobs to the planning thread, or — when it has not taken the earlier ones yet — plans them first, on the reading
    /// thread, which would otherwise wait: planning and encoding cost more than reading and validating do.
    /// </summary>
    private void HandOver(BlockingCollection<Block> handOff, ManifestJob[] jobs)
    {
        if (handOff.TryAdd(new Block(jobs, null)))
        {
            return;
        }

        var planned = new List<NewEdit>(jobs.Length);
        foreach (var job in jobs)
        {
            planned.AddRange(BatchPlanner.Jobs(job, _provider));
        }

        Interlocked.Add(ref _plannedWhileReading, jobs.Length);
        handOff.Add(new Block(null, planned));
    }

    private void Plan(BlockingCollection<Block> handOff)
    {
        // The validator took every job key the planner makes when both split outputs alike (the same provider limits).
        var keysChecked = Providers.ProviderLimits.For(_options.Provider) == Providers.ProviderLimits.For(_provider);
        using var writer = new EncodedJobs.Writer(keysChecked: keysChecked);
        var planning = true;
        Exception? failure = null;
        foreach (var block in handOff.GetConsumingEnumerable())
        {
            // Whatever happens here, the hand-off is drained to the end: the reading thread must never wait on a full one.
            if (!planning)
            {
                continue;
            }

            try
            {
                if (block.Planned is { } planned)
                {
                    foreach (var newJob in planned)
                    {
                        writer.Add(newJob);
                    }
                }
                else
                {
                    foreach (var job in block.Jobs!)
                    {
                        foreach (var newJob in BatchPlanner.Jobs(job, _provider))
                        {
                            writer.Add(newJob);
                        }
                    }
                }

                if (_keepAtMost is { } keepAtMost)
                {
                    planning = writer.Bytes <= keepAtMost;
                }
                else if (Acceptable)
                {
                    Send(writer);
                    if (_sent >= LiveAfter)
                    {
                        _started.TrySetResult();
                    }
                }
                else
                {
                    // Already invalid (and not --skip-invalid): the import will be rolled back, so nothing more goes to it;
                    // the reading thread still validates to the end, so that every error of the file is reported.
                    planning = false;
                }
            }
            catch (DuplicateJobKeyException) when (_keepAtMost is not null)
            {
                // The validator reports the id; an import (with --skip-invalid) reads the file again and the store refuses it.
                planning = false;
            }
            catch (Exception ex)
            {
                failure = ex;
                planning = false;
            }
        }

        if (failure is null && planning)
        {
            writer.CloseChunk();
            if (_keepAtMost is null)
            {
                Send(writer);
            }
            else
            {
                _kept = writer.Complete();
            }
        }

        // A failure reaches the import through Completion, as it was thrown.
        _chunks.Writer.TryComplete();
        if (failure is not null)
        {
            throw failure;
        }
    }

    /// <summary>Hands the chunks the writer has filled to the import, waiting while it has not taken the earlier ones.</summary>
    private void Send(EncodedJobs.Writer writer)
    {
        while (writer.TryTakeChunk(out var chunk))
        {
            while (!_chunks.Writer.TryWrite(chunk))
            {
                // Untaken chunks fill the hand-on (large jobs make small chunks): the import must start now.
                _started.TrySetResult();
                _chunks.Writer.WaitToWriteAsync(_stop.Token).AsTask().GetAwaiter().GetResult();
            }

            _sent += chunk.Jobs;
        }
    }

    /// <summary>One hand-off: manifest jobs to plan, or jobs the reading thread planned already.</summary>
    private sealed record Block(ManifestJob[]? Jobs, List<NewEdit>? Planned);

    private async IAsyncEnumerable<(byte[] Json, int Jobs)> LiveChunksAsync([EnumeratorCancellation] CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _taken, 1) == 1)
        {
            throw new InvalidOperationException("A live pass's jobs are enumerated once.");
        }

        while (await _chunks.Reader.WaitToReadAsync(ct))
        {
            while (_chunks.Reader.TryRead(out var chunk))
            {
                yield return chunk;
            }
        }

        await Completion;
        if (!Acceptable)
        {
            throw new ManifestInvalidException();
        }
    }
}

/// <summary>The manifest was found invalid while its jobs were being imported; the import was rolled back.</summary>
public sealed class ManifestInvalidException : IOException
{
    public ManifestInvalidException()
        : base("The manifest is invalid; nothing was enqueued.")
    {
    }

    public ManifestInvalidException(string message)
        : base(message)
    {
    }

    public ManifestInvalidException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

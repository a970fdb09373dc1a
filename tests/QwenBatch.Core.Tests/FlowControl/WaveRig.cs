using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Core.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using QwenBatch.FlowControl;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.FlowControl;

/// <summary>
/// A wave of edits through the real submit and poll steps and a real SQLite store, on a fake clock: a fleet of
/// processes, each with its own latency model, scouts and lessons (shared only through the store), submitting at a
/// request rate and polling as the poller does — claim what is due, poll it, write the answers together, then teach the
/// wave. The clock jumps from one due time to the next, so the lags it measures are the schedule's, not a machine's.
/// </summary>
internal sealed class WaveRig : IAsyncDisposable
{
    public const string Provider = "simulator";

    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(2);

    private readonly SqliteStoreScope _scope = new();
    private readonly ProviderRegistry _providers;
    private readonly EditStateChanger _changer;
    private readonly Process[] _processes;

    public WaveRig(int processes, TimeSpan? prior = null, IReadOnlyList<LatencyModel>? models = null)
    {
        Tasks = new WaveProvider(_scope.Time);
        _providers = new ProviderRegistry([new ProviderAccount(Provider, Tasks, new ProviderOptions { PricePerImage = 0.02m, ExpectedLatency = prior })]);
        _changer = new EditStateChanger(_scope.Store, NullLogger<EditStateChanger>.Instance);
        var random = new Random(25);
        _processes = [.. Enumerable.Range(0, processes).Select(i => new Process(this, models?[i] ?? new LatencyModel(), random))];
    }

    public WorkerOptions Options { get; } = new();

    public WaveProvider Tasks { get; }

    public IStore Store => _scope.Store;

    public TimeProvider Time => _scope.Time;

    /// <summary>Imports <paramref name="count"/> edits and submits them at <paramref name="requestsPerSecond"/>, the processes taking turns.</summary>
    public async Task<long> SubmitAsync(int count, double requestsPerSecond, string name = "wave")
    {
        var batch = await _scope.ImportAsync(count, name);
        var queued = await Store.FeedAsync(new FeedRequest("feeder", count, batch.Id), new FeedPolicy(_providers), CancellationToken.None);
        foreach (var (edit, i) in queued.OrderBy(e => e.Id).Select((e, i) => (e, i)))
        {
            var outcome = await _processes[i % _processes.Length].Submit.RunAsync(edit, $"process-{i % _processes.Length}", CancellationToken.None);
            outcome.ShouldBeOfType<StepOutcome.AtProvider>();
            await PollDueAsync(batch.Id);
            _scope.Time.Advance(TimeSpan.FromSeconds(1 / requestsPerSecond));
        }

        return batch.Id;
    }

    /// <summary>Polls as the fleet's pollers would until every edit of the batch left the provider.</summary>
    public async Task SettleAsync(long batchId)
    {
        for (var round = 0; round < 10_000; round++)
        {
            await PollDueAsync(batchId);
            if ((await Store.NextDueAsync(batchId, CancellationToken.None)).AtProvider is not { } next)
            {
                return;
            }

            if (next > _scope.Time.GetUtcNow())
            {
                _scope.Time.Advance(next - _scope.Time.GetUtcNow());
            }
        }

        throw new InvalidOperationException("The wave never settled.");
    }

    /// <summary>Each process in turn takes what is due and polls it, as its poller's round does.</summary>
    private async Task PollDueAsync(long batchId)
    {
        foreach (var process in _processes)
        {
            var due = await Store.ClaimPollsAsync(new PollClaim(64, Lease, batchId), CancellationToken.None);
            if (due.Count == 0)
            {
                continue;
            }

            var verdicts = new List<PollVerdict>();
            foreach (var edit in due)
            {
                verdicts.Add(await process.Poll.PollAsync(edit, CancellationToken.None));
            }

            var moved = await _changer.MoveManyAsync([.. verdicts.Select(v => v.Move)], "poller");
            for (var i = 0; i < verdicts.Count; i++)
            {
                if (moved[i] is not null && verdicts[i].Lesson is { } lesson)
                {
                    await Store.PullWaveForwardAsync(lesson with { DueBefore = Time.GetUtcNow() + (Lease / 2) }, CancellationToken.None);
                }
            }
        }
    }

    public ValueTask DisposeAsync() => _scope.DisposeAsync();

    private sealed class Process
    {
        public Process(WaveRig rig, LatencyModel latency, Random random)
        {
            var schedule = new PollSchedule(rig.Options, random.NextDouble);
            var failures = new StepFailures(rig._changer, rig.Options, rig.Time, random.NextDouble, NullLogger<StepFailures>.Instance);
            var scouts = new LatencyScouts(rig.Options, rig.Time);
            Submit = new SubmitStep(rig._changer, rig._providers, new EditRequestBuilder(), schedule, latency, scouts,
                new UnwrittenMoves(rig._changer, rig.Time, NullLogger<UnwrittenMoves>.Instance), failures, rig.Time, NullLogger<SubmitStep>.Instance);
            Poll = new PollStep(rig._providers, rig.Options, schedule, latency, scouts, new WaveLessons(), rig.Time, random.NextDouble, NullLogger<PollStep>.Instance);
        }

        public SubmitStep Submit { get; }

        public PollStep Poll { get; }
    }
}

/// <summary>
/// Tasks that take 6–6.5 s, spread evenly over the range in submit order, as <c>qwenbatch simulate --latency 6-6.5</c>
/// makes them; counts status calls and how late each completion was seen.
/// </summary>
internal sealed class WaveProvider(TimeProvider time) : IImageEditProvider
{
    private readonly Dictionary<string, DateTimeOffset> _doneAt = [];
    private readonly Dictionary<string, TimeSpan> _latency = [];

    public TimeSpan MinLatency { get; set; } = TimeSpan.FromSeconds(6);

    public TimeSpan MaxLatency { get; set; } = TimeSpan.FromSeconds(6.5);

    /// <summary>The first tasks submitted take a minute: scouts that report too late to teach the wave.</summary>
    public int Stuck { get; set; }

    public int StatusCalls { get; private set; }

    /// <summary>For each task seen finished: how long it took, and how late its completion was seen.</summary>
    public List<(TimeSpan Latency, TimeSpan Lag)> Completions { get; } = [];

    public Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct)
    {
        var id = $"req-{_doneAt.Count + 1}";
        // A golden-ratio walk over the range: every part of it early in the wave, none in submit order.
        var latency = _doneAt.Count < Stuck ? TimeSpan.FromMinutes(1) : MinLatency + ((MaxLatency - MinLatency) * ((_doneAt.Count * 0.6180339887) % 1));
        _latency[id] = latency;
        _doneAt[id] = time.GetUtcNow() + latency;
        return Task.FromResult(new SubmitAccepted(id, 0));
    }

    public Task<PollResult> PollAsync(string requestId, CancellationToken ct)
    {
        StatusCalls++;
        var now = time.GetUtcNow();
        if (now < _doneAt[requestId])
        {
            return Task.FromResult(PollResult.Running);
        }

        Completions.Add((_latency[requestId], now - _doneAt[requestId]));
        return Task.FromResult(new PollResult(PollStatus.Completed, Outputs: [new ProviderOutput("https://cdn.example/out.png", null, "image/png")]));
    }

    public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct) => Task.FromResult(CancelOutcome.Requested);
}

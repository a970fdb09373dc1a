using Microsoft.Extensions.Time.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Edits;
using QwenBatch.FlowControl;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Steps;
using QwenBatch.Testing.Time;

namespace QwenBatch.Core.Tests.Steps;

/// <summary>The steps over edits in memory, a scripted provider and a manual clock: no I/O, no waiting.</summary>
internal sealed class StepsHarness
{
    public StepsHarness(WorkerOptions? options = null, ProviderOptions? account = null, QwenBatch.Secrets.SecretRedactor? redactor = null)
    {
        Options = options ?? new WorkerOptions();
        Edits = new MemoryEdits(Time);
        Scouts = new LatencyScouts(Options, Time);
        Changer = new EditStateChanger(Edits, NullLogger<EditStateChanger>.Instance, redactor);
        Providers = new ProviderRegistry([new ProviderAccount("odirouter", Provider, account ?? new ProviderOptions { PricePerImage = 0.02m })]);
        Unwritten = new UnwrittenMoves(Changer, Time, NullLogger<UnwrittenMoves>.Instance);
        var schedule = new PollSchedule(Options, () => 0.5);
        Failures = new StepFailures(Changer, Options, Time, () => 0.5, NullLogger<StepFailures>.Instance);
        Submit = new SubmitStep(Changer, Providers, new EditRequestBuilder(), schedule, Latency, Scouts, Unwritten, Failures, Time, NullLogger<SubmitStep>.Instance);
        Poll = new PollStep(Providers, Options, schedule, Latency, Scouts, Lessons, Time, () => 0.5, NullLogger<PollStep>.Instance);
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));

    public WorkerOptions Options { get; }

    public MemoryEdits Edits { get; }

    public EditStateChanger Changer { get; }

    public ScriptedProvider Provider { get; } = new();

    public ProviderRegistry Providers { get; }

    public LatencyModel Latency { get; } = new();

    public LatencyScouts Scouts { get; }

    public WaveLessons Lessons { get; } = new();

    public UnwrittenMoves Unwritten { get; }

    public StepFailures Failures { get; }

    public SubmitStep Submit { get; }

    public PollStep Poll { get; }

    public EditRecord Queued(long id = 1, int n = 1) => Edits.Add(Edit(id, n) with { State = EditState.Queued, ReservedUsd = 0.02m * n });

    public EditRecord AtProvider(long id = 1, int acceptedSubmits = 1, bool cancelRequested = false) => Edits.Add(Edit(id, 1) with
    {
        State = EditState.AtProvider,
        RequestId = $"req-{id}",
        AcceptedSubmits = acceptedSubmits,
        SubmittedAt = Time.GetUtcNow(),
        DueAt = Time.GetUtcNow(),
        ReservedUsd = 0.02m,
        CancelRequested = cancelRequested,
    });

    /// <summary>Advances the clock in small steps until <paramref name="task"/> is done (a step waiting on the clock).</summary>
    public async Task<T> PumpAsync<T>(Task<T> task)
    {
        // The step's continuation runs on the thread pool and may register its next wait on the clock only after a
        // while: the clock moves on until the step is done, with a real pause each time so the step can get there, and
        // a test that never finishes fails rather than hangs.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!task.IsCompleted && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            Time.Advance(TimeSpan.FromMilliseconds(50));
            await Task.WhenAny(task, Task.Delay(1));
        }

        task.IsCompleted.ShouldBeTrue("the step waiting on the clock never finished");
        return await task;
    }

    private EditRecord Edit(long id, int n) => new()
    {
        Id = id,
        BatchId = 1,
        Key = $"e{id}",
        ContentHash = "h",
        State = EditState.Pending,
        Provider = "odirouter",
        Spec = new EditSpec { Prompt = $"prompt {id}", Images = ["https://example.test/a.png"], N = n },
        DueAt = Time.GetUtcNow(),
        CreatedAt = Time.GetUtcNow(),
    };
}

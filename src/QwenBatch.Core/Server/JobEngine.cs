using Microsoft.Extensions.Logging;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Secrets;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Server;

/// <summary>What a job engine is built from; the parts a composition root, a test or a benchmark chooses.</summary>
/// <param name="Random">Jitter source in [0, 1): fixed in tests so backoff and poll delays are exact.</param>
/// <param name="Latency">Learned task latencies, shared by the servers that should learn together.</param>
/// <param name="Maintenance">Background loops run beside the dispatcher (scheduler, retention, continuations).</param>
/// <param name="Redactor">Masks secrets in job errors before they are stored; default: the configured providers' API keys.</param>
public sealed record EngineParts(
    IJobStore Store,
    ProviderRegistry Providers,
    WorkerOptions Options,
    TimeProvider Time,
    Func<double> Random,
    LatencyModel Latency,
    OutputDownloader Downloader,
    ILoggerFactory Loggers,
    IEnumerable<IServerLoop>? Maintenance = null,
    SecretRedactor? Redactor = null);

/// <summary>The one place the engine is assembled: the state changer, the steps, the runner and the server.</summary>
public static class JobEngine
{
    public static JobServer Create(EngineParts parts)
    {
        var (store, providers, options, time, random, latency, downloader, loggers, maintenance, redactor) = parts;
        var due = new DueTimes();
        var slots = new StepSlots();
        // A group writer per 8 slots up to the default 16 (2 writers), then one per 16: more writers make smaller groups,
        // and each group costs a round trip, a commit and its plan's start-up whatever its size. At 32 slots, 2 writers
        // wrote 0.3–0.6 groups per job against 4 writers' 0.6–1.05, at less PostgreSQL CPU per job (docs/benchmarks.md).
        var writers = Math.Min(options.Concurrency / 8, Math.Max(2, options.Concurrency / 16));
        var changer = new EditStateChanger(
            store, loggers.CreateLogger<EditStateChanger>(), redactor ?? new SecretRedactor(providers.ApiKeys), due.Add, writers, slots);
        var schedule = new PollSchedule(options, random);
        var poll = new PollStep(changer, providers, options, schedule, latency, time, loggers.CreateLogger<PollStep>());
        IJobStep[] steps =
        [
            new SubmitStep(changer, store, providers, new EditRequestBuilder(), schedule, latency, time, loggers.CreateLogger<SubmitStep>()),
            poll,
            new CancelStep(changer, providers, poll, time, loggers.CreateLogger<CancelStep>()),
            new DownloadStep(changer, store, downloader, time),
        ];
        var runner = new JobStepRunner(steps, changer, options, time, random, loggers.CreateLogger<JobStepRunner>());
        var latencies = new LatencyMemory(store, latency, options, time, loggers.CreateLogger<LatencyMemory>());
        return new JobServer(store, runner, providers, options, time, loggers.CreateLogger<JobServer>(), maintenance, due, latencies, slots);
    }
}

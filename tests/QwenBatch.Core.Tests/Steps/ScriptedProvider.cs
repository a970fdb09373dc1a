using System.Collections.Concurrent;
using QwenBatch.Edits;
using QwenBatch.Providers;

namespace QwenBatch.Core.Tests.Steps;

/// <summary>
/// An in-process provider for engine tests: accepts submits (or fails them as scripted), completes a task after a set
/// number of polls with an inline PNG, and records every call, so the tests can check what the engine sent.
/// </summary>
internal sealed class ScriptedProvider : IImageEditProvider
{
    /// <summary>A PNG signature and a little more: enough for the downloader's format check.</summary>
    public static readonly string PngBase64 = Convert.ToBase64String([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]);

    private readonly ConcurrentQueue<Exception> _submitFailures = new();
    private readonly ConcurrentDictionary<string, int> _polls = new();
    private readonly ConcurrentDictionary<string, string> _promptByRequest = new();
    private readonly ConcurrentDictionary<string, int> _running = new();
    private readonly ConcurrentQueue<string> _failTasks = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _acceptedAt = new();
    private readonly ConcurrentDictionary<string, bool> _finished = new();
    private int _accepted;
    private int _inFlight;
    private int _maxInFlight;
    private int _pollCalls;

    public int PollsBeforeDone { get; init; } = 1;

    /// <summary>When set, every submit waits for it before answering (a slow provider).</summary>
    public TaskCompletionSource? SubmitGate { get; set; }

    public int Accepted => _accepted;

    /// <summary>With a clock and a latency, a task completes that long after it was accepted (polls do not matter).</summary>
    public TimeProvider? Clock { get; init; }

    public TimeSpan? TaskLatency { get; init; }

    public int PollCalls => _pollCalls;

    /// <summary>Most tasks accepted and not yet reported finished at the same time.</summary>
    public int MaxInFlight => _maxInFlight;

    /// <summary>How late each completion was noticed (time-based tasks only).</summary>
    public ConcurrentBag<TimeSpan> CompletionLags { get; } = [];

    public ConcurrentBag<string> CancelledRequests { get; } = [];

    public ConcurrentBag<DateTimeOffset> SubmitTimes { get; } = [];

    public ConcurrentBag<string> SubmittedPrompts { get; } = [];

    /// <summary>Steps that ran at the same time for the same job: must stay empty.</summary>
    public ConcurrentBag<string> Overlaps { get; } = [];

    public void FailNextSubmit(Exception error) => _submitFailures.Enqueue(error);

    /// <summary>The next task(s) whose prompt matches end failed at the provider.</summary>
    public void FailTaskFor(string prompt) => _failTasks.Enqueue(prompt);

    public async Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct)
    {
        Enter(request.Prompt);
        try
        {
            if (SubmitGate is { } gate)
            {
                await gate.Task.WaitAsync(ct);
            }

            if (_submitFailures.TryDequeue(out var error))
            {
                throw error;
            }

            SubmittedPrompts.Add(request.Prompt);
            var id = $"req-{Interlocked.Increment(ref _accepted)}";
            _promptByRequest[id] = request.Prompt;
            if (Clock is not null)
            {
                _acceptedAt[id] = Clock.GetUtcNow();
                SubmitTimes.Add(Clock.GetUtcNow());
            }

            var inFlight = Interlocked.Increment(ref _inFlight);
            int seen;
            while (inFlight > (seen = _maxInFlight) && Interlocked.CompareExchange(ref _maxInFlight, inFlight, seen) != seen)
            {
            }

            return new SubmitAccepted(id, 0);
        }
        finally
        {
            Leave(request.Prompt);
        }
    }

    public Task<PollResult> PollAsync(string requestId, CancellationToken ct)
    {
        var prompt = _promptByRequest[requestId];
        Enter(prompt);
        try
        {
            Interlocked.Increment(ref _pollCalls);
            var polls = _polls.AddOrUpdate(requestId, 1, (_, n) => n + 1);
            if (Clock is not null && TaskLatency is { } taskLatency)
            {
                var due = _acceptedAt[requestId] + taskLatency;
                if (Clock.GetUtcNow() < due)
                {
                    return Task.FromResult(PollResult.Running);
                }

                CompletionLags.Add(Clock.GetUtcNow() - due);
            }
            else if (polls < PollsBeforeDone)
            {
                return Task.FromResult(PollResult.Running);
            }

            Finish(requestId);

            if (_failTasks.TryPeek(out var failing) && failing == prompt && _failTasks.TryDequeue(out _))
            {
                return Task.FromResult(new PollResult(PollStatus.Failed, Error: "simulated model failure"));
            }

            return Task.FromResult(new PollResult(PollStatus.Completed, Outputs: [new ProviderOutput(null, PngBase64, "image/png")]));
        }
        finally
        {
            Leave(prompt);
        }
    }

    public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct)
    {
        CancelledRequests.Add(requestId);
        Finish(requestId);
        return Task.FromResult(CancelOutcome.Requested);
    }

    private void Finish(string requestId)
    {
        if (_finished.TryAdd(requestId, true))
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private void Enter(string prompt)
    {
        if (_running.AddOrUpdate(prompt, 1, (_, n) => n + 1) > 1)
        {
            Overlaps.Add(prompt);
        }
    }

    private void Leave(string prompt) => _running.AddOrUpdate(prompt, 0, (_, n) => n - 1);
}

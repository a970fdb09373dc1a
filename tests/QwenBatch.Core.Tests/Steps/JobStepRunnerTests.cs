using QwenBatch.Core.Tests.Server;
using QwenBatch.Edits;
using QwenBatch.Providers;

namespace QwenBatch.Core.Tests.Steps;

public sealed class JobStepRunnerTests
{
    [Fact]
    public async Task RunAsync_CircuitOpenMoreTimesThanMaxAttempts_JobWaitsAndSucceedsWithoutSpendingAttempts()
    {
        await using var engine = new EngineHarness();
        for (var i = 0; i < engine.Options.MaxAttempts + 2; i++)
        {
            engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.Unavailable, "POST /v1/queue: not sent, the provider is failing (circuit open)", retryAfter: TimeSpan.FromSeconds(15)));
        }

        var batch = await engine.ImportAsync(1);
        var start = engine.Time.GetUtcNow();

        var job = (await engine.RunBatchAsync(batch))[0];

        job.State.ShouldBe(EditState.Succeeded);
        job.UncertainSubmits.ShouldBe(0);
        engine.Scripted.Accepted.ShouldBe(1);
        var history = await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None);
        var waits = history.Where(h => h.Reason != null && h.Reason.StartsWith("provider unavailable, waiting", StringComparison.Ordinal)).ToList();
        waits.Count.ShouldBe(engine.Options.MaxAttempts + 2);
        waits.ShouldAllBe(h => h.From == EditState.Submitting && h.To == EditState.Pending);
        // Each wait is the break (15 s) plus half the retry base delay (jitter fixed at 0.5): the job slept through the outage.
        (job.FinishedAt!.Value - start).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromSeconds(16) * (engine.Options.MaxAttempts + 2));
    }

    [Fact]
    public async Task RunAsync_ProviderRejectsSubmit_FailsAtOnceWithTheProviderMessage()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.Rejected, "POST /api/v3/wavespeed-ai/qwen-image/edit-plus: HTTP 400 size: \"W*H\" with each side between 256 and 1536 was expected", 400));
        var batch = await engine.ImportAsync(1);

        var job = (await engine.RunBatchAsync(batch))[0];

        job.State.ShouldBe(EditState.Failed);
        job.Error!.ShouldContain("each side between 256 and 1536");
        engine.Scripted.Accepted.ShouldBe(0);
    }

    [Fact]
    public async Task RunAsync_ProviderEchoesTheKeyInItsError_StoredErrorAndHistoryCarryTheMaskNotTheKey()
    {
        // Some APIs echo the key they were sent in a 401; the job error is read by reports, errors.csv and the dashboard.
        const string key = "odr-echoed-key-7f3a9c41";
        await using var engine = new EngineHarness();
        engine.Account.ApiKey = key;
        engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.Rejected, $"POST /v1/queue/qwen_image_edit_plus: HTTP 401 Incorrect API key provided: {key}", 401));
        var batch = await engine.ImportAsync(1);

        var job = (await engine.RunBatchAsync(batch))[0];

        job.State.ShouldBe(EditState.Failed);
        job.Error.ShouldBe("POST /v1/queue/qwen_image_edit_plus: HTTP 401 Incorrect API key provided: ***");
        var history = await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None);
        history.ShouldContain(h => h.Reason != null && h.Reason.EndsWith("Incorrect API key provided: ***", StringComparison.Ordinal));
        history.ShouldAllBe(h => h.Reason == null || !h.Reason.Contains(key));
    }
}

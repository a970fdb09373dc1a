using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Steps;

namespace QwenBatch.Core.Tests.Steps;

public sealed class PollStepTests
{
    [Fact]
    public async Task PollAsync_StillRunning_StaysAtTheProviderDueAgainPerTheSchedule()
    {
        var h = new StepsHarness();
        var edit = h.AtProvider();
        var poll = ScriptedPoll(h, pollsBeforeDone: 3);

        var verdict = await poll.PollAsync(edit, CancellationToken.None);

        verdict.Outcome.ShouldBeOfType<StepOutcome.AtProvider>();
        verdict.Move.Next.State.ShouldBe(EditState.AtProvider);
        verdict.Move.Next.Polls.ShouldBe(1);
        verdict.Move.Next.DueAt.ShouldBeGreaterThan(h.Time.GetUtcNow());
    }

    [Fact]
    public async Task PollAsync_Completed_MovesToDownloadingWithTheOutputsAndSettlesTheCharge()
    {
        var h = new StepsHarness();
        var edit = h.AtProvider();
        await h.Provider.SubmitAsync(Request(edit), CancellationToken.None);

        var verdict = await h.Poll.PollAsync(edit, CancellationToken.None);

        verdict.Outcome.ShouldBeOfType<StepOutcome.Downloadable>().Outputs.ShouldBe(1);
        var next = verdict.Move.Next;
        (next.State, next.Outputs.Count, next.CostUsd, next.ReservedUsd).ShouldBe((EditState.Downloading, 1, 0.02m, 0m));
        verdict.Move.Reason.ShouldBe("completed with 1 output(s)");
    }

    [Fact]
    public async Task PollAsync_TaskFailedWithResubmitsLeft_GoesBackToTheBacklogWithoutItsRequestId()
    {
        var h = new StepsHarness();
        var edit = h.AtProvider(acceptedSubmits: 1);
        h.Provider.FailTaskFor(edit.Spec.Prompt);
        await h.Provider.SubmitAsync(Request(edit), CancellationToken.None);

        var verdict = await h.Poll.PollAsync(edit, CancellationToken.None);

        verdict.Outcome.ShouldBeOfType<StepOutcome.Backlog>();
        (verdict.Move.Next.State, verdict.Move.Next.RequestId, verdict.Move.Next.ReservedUsd).ShouldBe((EditState.Pending, null, 0m));
    }

    [Fact]
    public async Task PollAsync_TaskFailedAfterItsLastResubmit_FailsTheEdit()
    {
        var h = new StepsHarness();
        var edit = h.AtProvider(acceptedSubmits: new WorkerOptions().MaxProviderResubmits + 1);
        h.Provider.FailTaskFor(edit.Spec.Prompt);
        await h.Provider.SubmitAsync(Request(edit), CancellationToken.None);

        var verdict = await h.Poll.PollAsync(edit, CancellationToken.None);

        verdict.Outcome.ShouldBeOfType<StepOutcome.Failed>().Reason.ShouldContain("simulated model failure");
        verdict.Move.Next.State.ShouldBe(EditState.Failed);
    }

    [Fact]
    public async Task PollAsync_CancelRequested_SendsTheProvidersCancelAndEndsCancelled()
    {
        var h = new StepsHarness();
        var edit = h.AtProvider(cancelRequested: true);

        var verdict = await h.Poll.PollAsync(edit, CancellationToken.None);

        h.Provider.CancelledRequests.ShouldBe(["req-1"]);
        verdict.Outcome.ShouldBeOfType<StepOutcome.Cancelled>().Reason.ShouldBe("cancelled by an operator; the provider accepted the cancel");
        verdict.Move.Next.State.ShouldBe(EditState.Cancelled);
    }

    [Fact]
    public async Task PollAsync_LongerThanJobTimeout_CancelledAtTheProviderAndFailedWithTheReason()
    {
        var h = new StepsHarness(new WorkerOptions { JobTimeout = TimeSpan.FromMinutes(5) });
        var edit = h.AtProvider();
        h.Time.Advance(TimeSpan.FromMinutes(6));

        var verdict = await h.Poll.PollAsync(edit, CancellationToken.None);

        h.Provider.CancelledRequests.ShouldBe(["req-1"]);
        verdict.Outcome.ShouldBeOfType<StepOutcome.Failed>().Reason.ShouldStartWith("timed out: still at the provider after the 00:05:00 Worker:JobTimeout");
    }

    [Fact]
    public async Task PollAsync_ProviderDown_WaitsWithoutSpendingAnAttempt()
    {
        var h = new StepsHarness();
        var edit = h.AtProvider();
        var poll = FailingPoll(h, new ProviderException(ProviderErrorKind.Unavailable, "circuit open", retryAfter: TimeSpan.FromSeconds(15)));

        var verdict = await poll.PollAsync(edit, CancellationToken.None);

        verdict.Outcome.ShouldBeOfType<StepOutcome.AtProvider>();
        verdict.Move.Next.Attempt.ShouldBe(0);
        verdict.Move.Next.DueAt.ShouldBeGreaterThanOrEqualTo(h.Time.GetUtcNow() + TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task PollAsync_StatusCallFailsEveryAttempt_FailsTheEditOnceTheyAreSpent()
    {
        var h = new StepsHarness(new WorkerOptions { MaxAttempts = 3 });
        var edit = h.AtProvider();
        var poll = FailingPoll(h, new ProviderException(ProviderErrorKind.NotAccepted, "HTTP 500", 500));

        var first = await poll.PollAsync(edit, CancellationToken.None);
        var second = await poll.PollAsync(first.Move.Next, CancellationToken.None);
        var third = await poll.PollAsync(second.Move.Next, CancellationToken.None);

        (first.Move.Next.Attempt, second.Move.Next.Attempt).ShouldBe((1, 2));
        second.Move.Next.DueAt.ShouldBeGreaterThan(h.Time.GetUtcNow());
        third.Outcome.ShouldBeOfType<StepOutcome.Failed>().Reason.ShouldBe("gave up polling after 3 attempts: HTTP 500");
    }

    [Fact]
    public void Delivered_Completed_MovesToDownloadingWithoutAStatusCall_AndLearnsTheLatencyAsItIs()
    {
        var h = new StepsHarness();
        var edit = h.AtProvider();
        h.Time.Advance(TimeSpan.FromSeconds(6.2));

        var verdict = h.Poll.Delivered(edit, new PollResult(PollStatus.Completed, Outputs: [new ProviderOutput("https://cdn.example/1.png", null, null, false)]));

        verdict.ShouldNotBeNull().Outcome.ShouldBeOfType<StepOutcome.Downloadable>();
        (verdict.Move.Next.State, verdict.Move.Next.CostUsd, verdict.Move.Next.ReservedUsd).ShouldBe((EditState.Downloading, 0.02m, 0m));
        h.Provider.PollCalls.ShouldBe(0);
        h.Latency.Expected(QwenBatch.FlowControl.LatencyModel.Key(edit.Provider, edit.Spec.N, edit.Spec.Size)).ShouldBe(TimeSpan.FromSeconds(6.2));
    }

    [Fact]
    public void Delivered_Failed_FailsOrResubmitsAsAPollWould()
    {
        var h = new StepsHarness();
        var last = h.AtProvider(id: 1, acceptedSubmits: new WorkerOptions().MaxProviderResubmits + 1);
        var first = h.AtProvider(id: 2, acceptedSubmits: 1);
        var failed = new PollResult(PollStatus.Failed, Error: "content policy");

        h.Poll.Delivered(last, failed).ShouldNotBeNull().Outcome.ShouldBeOfType<StepOutcome.Failed>().Reason.ShouldContain("content policy");
        h.Poll.Delivered(first, failed).ShouldNotBeNull().Outcome.ShouldBeOfType<StepOutcome.Backlog>();
    }

    [Fact]
    public void Delivered_NotFinishedOrCancelRequested_ChangesNothing()
    {
        var h = new StepsHarness();
        var done = new PollResult(PollStatus.Completed, Outputs: [new ProviderOutput("https://cdn.example/1.png", null, null, null)]);

        h.Poll.Delivered(h.AtProvider(id: 1), PollResult.Running).ShouldBeNull();
        h.Poll.Delivered(h.AtProvider(id: 2, cancelRequested: true), done).ShouldBeNull("the poller sends the cancel and settles the edit");
    }

    [Fact]
    public async Task PollAsync_StillRunningWhileAwaitingAWebhook_NextLookIsNoSoonerThanTheMargin()
    {
        var account = new ProviderOptions { PricePerImage = 0.02m };
        account.ReceiveWebhooksAt(new ProviderWebhook(new Uri("https://batch.example/webhooks/wavespeed"), TimeSpan.FromSeconds(15)));
        var h = new StepsHarness();
        var edit = h.AtProvider();
        var poll = ScriptedPoll(h, pollsBeforeDone: 3, account);

        var verdict = await poll.PollAsync(edit, CancellationToken.None);

        verdict.Outcome.ShouldBeOfType<StepOutcome.AtProvider>();
        verdict.Move.Next.DueAt.ShouldBeGreaterThanOrEqualTo(h.Time.GetUtcNow() + TimeSpan.FromSeconds(15));
    }

    private static EditRequest Request(EditRecord edit) => new(edit.Spec.Prompt, edit.Spec.Images, null, null, 1, null);

    private static PollStep ScriptedPoll(StepsHarness h, int pollsBeforeDone, ProviderOptions? account = null)
    {
        var provider = new ScriptedProvider { PollsBeforeDone = pollsBeforeDone };
        provider.SubmitAsync(new EditRequest("prompt 1", ["https://example.test/a.png"], null, null, 1, null), CancellationToken.None).GetAwaiter().GetResult();
        return new PollStep(new ProviderRegistry([new ProviderAccount("odirouter", provider, account ?? new ProviderOptions { PricePerImage = 0.02m })]),
            h.Options, new QwenBatch.FlowControl.PollSchedule(h.Options, () => 0.5), h.Latency, h.Scouts, h.Lessons, h.Time, () => 0.5,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<PollStep>.Instance);
    }

    private static PollStep FailingPoll(StepsHarness h, Exception error) =>
        new(new ProviderRegistry([new ProviderAccount("odirouter", new FailingProvider(error), new ProviderOptions { PricePerImage = 0.02m })]),
            h.Options, new QwenBatch.FlowControl.PollSchedule(h.Options, () => 0.5), h.Latency, h.Scouts, h.Lessons, h.Time, () => 0.5,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<PollStep>.Instance);

    private sealed class FailingProvider(Exception error) : IImageEditProvider
    {
        public Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct) => Task.FromException<SubmitAccepted>(error);

        public Task<PollResult> PollAsync(string requestId, CancellationToken ct) => Task.FromException<PollResult>(error);

        public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct) => Task.FromException<CancelOutcome>(error);
    }
}

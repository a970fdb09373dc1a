using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Steps;

namespace QwenBatch.Core.Tests.Steps;

public sealed class SubmitStepTests
{
    [Fact]
    public async Task RunAsync_Accepted_RequestIdStoredAtOnceAndTheEditParkedAtTheProvider()
    {
        var h = new StepsHarness();
        var outcome = await h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None);

        var parked = outcome.ShouldBeOfType<StepOutcome.AtProvider>();
        parked.RequestId.ShouldBe("req-1");
        var edit = h.Edits[1];
        edit.State.ShouldBe(EditState.AtProvider);
        edit.RequestId.ShouldBe("req-1");
        edit.AcceptedSubmits.ShouldBe(1);
        edit.SubmittedAt.ShouldBe(h.Time.GetUtcNow());
        edit.DueAt.ShouldBe(parked.PollAt);
        var history = await h.Edits.GetHistoryAsync(1, CancellationToken.None);
        history.Select(e => (e.From, e.To)).ShouldBe([(EditState.Queued, EditState.Submitting), (EditState.Submitting, EditState.AtProvider)]);
        history[^1].Reason.ShouldBe("accepted as req-1");
        history[^1].ServerId.ShouldBe("server-a");
    }

    [Fact]
    public async Task RunAsync_AcceptedWithWebhooksOn_FirstPollIsOnlyTheFallbackAfterTheMargin()
    {
        var account = new ProviderOptions { PricePerImage = 0.02m };
        account.ReceiveWebhooksAt(new ProviderWebhook(new Uri("https://batch.example/webhooks/wavespeed"), TimeSpan.FromSeconds(15)));
        var h = new StepsHarness(account: account);
        h.Latency.Observe(QwenBatch.FlowControl.LatencyModel.Key("odirouter", 1, null), TimeSpan.FromSeconds(8));
        var plain = new StepsHarness();
        plain.Latency.Observe(QwenBatch.FlowControl.LatencyModel.Key("odirouter", 1, null), TimeSpan.FromSeconds(8));

        var awaiting = (await h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None)).ShouldBeOfType<StepOutcome.AtProvider>();
        var polled = (await plain.Submit.RunAsync(plain.Queued(), "server-a", CancellationToken.None)).ShouldBeOfType<StepOutcome.AtProvider>();

        (awaiting.PollAt - h.Time.GetUtcNow()).ShouldBe(TimeSpan.FromSeconds(25), "a quarter past the expected 8 s, plus the 15 s margin");
        (polled.PollAt - plain.Time.GetUtcNow()).ShouldBe(TimeSpan.FromSeconds(8), "without webhooks, at the expected completion");
    }

    [Fact]
    public async Task RunAsync_NotAccepted_BackToQueuedWithAnAttemptAndNoUncertainSubmit()
    {
        var h = new StepsHarness();
        h.Provider.FailNextSubmit(new ProviderException(ProviderErrorKind.NotAccepted, "HTTP 503 before acceptance", 503));

        var outcome = await h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None);

        outcome.ShouldBeOfType<StepOutcome.Retry>().Error.Message.ShouldBe("HTTP 503 before acceptance");
        h.Edits[1].State.ShouldBe(EditState.Queued);
        h.Edits[1].Attempt.ShouldBe(1);
        h.Edits[1].UncertainSubmits.ShouldBe(0);
        h.Edits[1].ReservedUsd.ShouldBe(0.02m, "a retry keeps its reservation and its place");
    }

    [Fact]
    public async Task RunAsync_AnswerLost_CountsAnUncertainSubmitBeforeTheRetry()
    {
        var h = new StepsHarness();
        h.Provider.FailNextSubmit(new ProviderException(ProviderErrorKind.Uncertain, "the connection broke after sending"));

        await h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None);

        h.Edits[1].State.ShouldBe(EditState.Queued);
        h.Edits[1].UncertainSubmits.ShouldBe(1);
        (await h.Edits.GetHistoryAsync(1, CancellationToken.None))[^1].Reason.ShouldNotBeNull().ShouldContain("the provider may have accepted the submit");
    }

    [Fact]
    public async Task RunAsync_Rejected_FailsAtOnceWithTheProvidersMessage()
    {
        var h = new StepsHarness();
        h.Provider.FailNextSubmit(new ProviderException(ProviderErrorKind.Rejected, "HTTP 422: prompt is required", 422));

        var outcome = await h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None);

        outcome.ShouldBeOfType<StepOutcome.Failed>().Reason.ShouldBe("rejected: HTTP 422: prompt is required");
        h.Edits[1].State.ShouldBe(EditState.Failed);
        h.Edits[1].ReservedUsd.ShouldBe(0m, "a failed edit gives its reservation back");
        h.Edits[1].FinishedAt.ShouldNotBeNull();
    }

    [Fact]
    public async Task RunAsync_ProviderEchoesTheKeyInItsError_StoredErrorAndHistoryCarryTheMaskNotTheKey()
    {
        const string key = "sk-live-0123456789abcdef";
        var h = new StepsHarness(redactor: new QwenBatch.Secrets.SecretRedactor([key]));
        h.Provider.FailNextSubmit(new ProviderException(ProviderErrorKind.Rejected, $"HTTP 401: invalid key {key}", 401));

        await h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None);

        h.Edits[1].Error.ShouldNotBeNull().ShouldNotContain(key);
        h.Edits[1].Error!.ShouldContain(QwenBatch.Secrets.SecretRedactor.Mask);
        (await h.Edits.GetHistoryAsync(1, CancellationToken.None)).ShouldAllBe(e => e.Reason == null || !e.Reason.Contains(key));
    }

    [Fact]
    public async Task RunAsync_Throttled_BackInTheBacklogWithoutSpendingAnAttempt()
    {
        var h = new StepsHarness();
        h.Provider.FailNextSubmit(new ProviderException(ProviderErrorKind.Throttled, "allowance booked too far ahead", retryAfter: TimeSpan.FromSeconds(20)));

        var outcome = await h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None);

        var backlog = outcome.ShouldBeOfType<StepOutcome.Backlog>();
        backlog.DueAt.ShouldBe(h.Time.GetUtcNow() + TimeSpan.FromSeconds(20));
        var edit = h.Edits[1];
        (edit.State, edit.Attempt, edit.ReservedUsd, edit.DueAt).ShouldBe((EditState.Pending, 0, 0m, backlog.DueAt));
    }

    [Fact]
    public async Task RunAsync_StoreAwayWhenTheRequestIdIsStored_KeptInTheProcessWrittenLaterAndNotSubmittedAgain()
    {
        var h = new StepsHarness();
        var gate = new TaskCompletionSource();
        h.Provider.SubmitGate = gate;
        var run = h.Submit.RunAsync(h.Queued(), "server-a", CancellationToken.None);
        await WaitUntilAsync(() => h.Edits[1].State == EditState.Submitting);

        // The store goes away while the POST is on its way: every try to store the request id fails.
        h.Edits.FailWrites(SubmitStep.StoreAttempts);
        gate.SetResult();
        var outcome = await h.PumpAsync(run);

        outcome.ShouldBeOfType<StepOutcome.Retry>().Error.Message.ShouldContain("accepted the submit as req-1");
        h.Edits[1].State.ShouldBe(EditState.Submitting);
        h.Unwritten.Holds(1).ShouldBeTrue();

        (await h.Unwritten.FlushAsync(1)).ShouldBeTrue();
        h.Edits[1].State.ShouldBe(EditState.AtProvider);
        h.Edits[1].RequestId.ShouldBe("req-1");
        h.Unwritten.Holds(1).ShouldBeFalse();
        h.Provider.Accepted.ShouldBe(1);
    }

    [Fact]
    public async Task RunAsync_CancelFlaggedDuringAnEarlierAttempt_EndsCancelledWithoutSendingAgain()
    {
        var h = new StepsHarness();
        var queued = h.Edits.Add(h.Queued() with { CancelRequested = true, Attempt = 1 });

        var outcome = await h.Submit.RunAsync(queued, "server-a", CancellationToken.None);

        outcome.ShouldBeOfType<StepOutcome.Cancelled>();
        h.Provider.Accepted.ShouldBe(0);
        (h.Edits[1].State, h.Edits[1].ReservedUsd).ShouldBe((EditState.Cancelled, 0m));
    }

    [Fact]
    public async Task RunAsync_EditCancelledMeanwhile_SendsNothing()
    {
        var h = new StepsHarness();
        var queued = h.Queued();
        await h.Changer.MoveAsync(queued, queued with { State = EditState.Cancelled }, "operator", "cancelled by an operator");

        var outcome = await h.Submit.RunAsync(queued, "server-a", CancellationToken.None);

        outcome.ShouldBe(StepOutcome.Moved.Instance);
        h.Provider.Accepted.ShouldBe(0);
        h.Edits[1].State.ShouldBe(EditState.Cancelled);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        condition().ShouldBeTrue();
    }
}

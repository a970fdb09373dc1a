using QwenBatch.Edits;
using QwenBatch.Feeding;
using QwenBatch.Providers;

namespace QwenBatch.Core.Tests.Feeding;

public sealed class FeedPolicyTests
{
    private static readonly DateOnly Day = new(2026, 12, 7);

    [Fact]
    public void Decide_BudgetForTwoEditsOfThree_QueuesTwoAndHoldsTheThirdWithTheBudgetInTheReason()
    {
        var policy = Policy(new ProviderOptions { PricePerImage = 0.02m });
        var edits = Edits(3, n: 1);
        var decisions = policy.Decide(Candidates(edits, new BatchMoney(0.05m, 0.01m, 0m)));

        decisions[0].ShouldBe(new FeedDecision.Queue(0.02m));
        decisions[1].ShouldBe(new FeedDecision.Queue(0.02m));
        var held = decisions[2].ShouldBeOfType<FeedDecision.Hold>();
        held.Reason.ShouldContain("batch budget of $0.05");
        held.Reason.ShouldContain("spent $0.01, reserved $0.04");
    }

    [Fact]
    public void Decide_ReservationsAlreadyOpen_CountAgainstTheBudget()
    {
        var policy = Policy(new ProviderOptions { PricePerImage = 0.10m });
        var decisions = policy.Decide(Candidates(Edits(1, n: 2), new BatchMoney(1.00m, 0.50m, 0.40m)));

        decisions.Single().ShouldBeOfType<FeedDecision.Hold>().Reason.ShouldContain("this edit needs up to $0.20");
    }

    [Fact]
    public void Decide_DailyBudgetAcrossBatches_HoldsWhatTodayHasNoRoomFor()
    {
        var policy = Policy(new ProviderOptions { PricePerImage = 0.02m, DailyBudgetUsd = 0.10m });
        var edits = Edits(3, n: 1, batchId: 1).Concat(Edits(3, n: 1, batchId: 2, firstId: 10)).ToList();
        var candidates = new FeedCandidates(edits,
            new Dictionary<long, BatchMoney> { [1] = new(null, 0, 0), [2] = new(null, 0, 0) },
            new Dictionary<string, ProviderLoad> { ["odirouter"] = new(0, 0.04m, 0.02m) }, Day);

        var decisions = policy.Decide(candidates);

        decisions.Count(d => d is FeedDecision.Queue).ShouldBe(2);
        var held = decisions.OfType<FeedDecision.Hold>().ToList();
        held.Count.ShouldBe(4);
        held[0].Reason.ShouldContain("odirouter daily budget of $0.10 would be exceeded on 2026-12-07 (UTC)");
        held[0].Reason.ShouldContain("spent today $0.04, reserved $0.06");
    }

    [Fact]
    public void Decide_ProviderAtItsMaxInFlight_SkipsWhatWouldGoOverAndHoldsNothing()
    {
        var policy = Policy(new ProviderOptions { PricePerImage = 0.02m, MaxInFlight = 5 });
        var candidates = new FeedCandidates(Edits(4, n: 1), new Dictionary<long, BatchMoney> { [1] = new(null, 0, 0) },
            new Dictionary<string, ProviderLoad> { ["odirouter"] = new(3, 0, 0) }, Day);

        var decisions = policy.Decide(candidates);

        decisions.Take(2).ShouldAllBe(d => d is FeedDecision.Queue);
        decisions.Skip(2).ShouldAllBe(d => d is FeedDecision.Skip);
    }

    [Fact]
    public void Decide_NoLimits_QueuesEveryEditReservingNTimesThePrice()
    {
        var policy = Policy(new ProviderOptions { PricePerImage = 0.03m });
        var decisions = policy.Decide(Candidates(Edits(2, n: 3), new BatchMoney(null, 0, 0)));

        decisions.ShouldAllBe(d => d == new FeedDecision.Queue(0.09m));
    }

    [Fact]
    public void Decide_ProviderNotConfiguredHere_HoldsThoseEditsNamingItAndQueuesTheOthers()
    {
        var policy = Policy(new ProviderOptions { PricePerImage = 0.02m });
        var edits = Edits(2, n: 1);
        edits[0] = edits[0] with { Provider = "simulator" };

        var decisions = policy.Decide(Candidates(edits, new BatchMoney(null, 0, 0)));

        var held = decisions[0].ShouldBeOfType<FeedDecision.Hold>();
        held.Reason.ShouldContain("provider 'simulator' is not configured on the server that fed it (configured: odirouter)");
        held.Reason.ShouldContain("retry <batch> --held-only");
        decisions[1].ShouldBe(new FeedDecision.Queue(0.02m));
    }

    private static FeedPolicy Policy(ProviderOptions options) =>
        new(new ProviderRegistry([new ProviderAccount("odirouter", new NotCalled(), options)]));

    private static FeedCandidates Candidates(IReadOnlyList<EditRecord> edits, BatchMoney money) =>
        new(edits, new Dictionary<long, BatchMoney> { [1] = money }, new Dictionary<string, ProviderLoad>(), Day);

    private static List<EditRecord> Edits(int count, int n, long batchId = 1, long firstId = 1) =>
        Enumerable.Range(0, count).Select(i => new EditRecord
        {
            Id = firstId + i,
            BatchId = batchId,
            Key = $"e{firstId + i}",
            ContentHash = "h",
            State = EditState.Pending,
            Provider = "odirouter",
            Spec = new EditSpec { Prompt = "p", Images = ["https://example.test/a.png"], N = n },
            DueAt = DateTimeOffset.UnixEpoch,
            CreatedAt = DateTimeOffset.UnixEpoch,
        }).ToList();

    /// <summary>The policy reads the accounts' options only; it never calls a provider.</summary>
    private sealed class NotCalled : IImageEditProvider
    {
        public Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct) => throw new InvalidOperationException("not called");

        public Task<PollResult> PollAsync(string requestId, CancellationToken ct) => throw new InvalidOperationException("not called");

        public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct) => throw new InvalidOperationException("not called");
    }
}

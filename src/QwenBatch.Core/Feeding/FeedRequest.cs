using QwenBatch.Edits;

namespace QwenBatch.Feeding;

/// <summary>One round of the feeder.</summary>
/// <param name="By">Who feeds (the Hangfire server id), recorded in history.</param>
/// <param name="Limit">How many edits at most.</param>
/// <param name="BatchId">Only this batch's edits (the <c>run</c> command), or any.</param>
/// <param name="ProviderLimits">At most this many edits of each provider named (its request allowance this round); providers not named are limited by <paramref name="Limit"/> only.</param>
public sealed record FeedRequest(string By, int Limit, long? BatchId = null, IReadOnlyDictionary<string, int>? ProviderLimits = null);

/// <summary>
/// What the store shows the feed policy: the due pending edits it took (oldest due first), and the money and load they are
/// decided against as last committed, locked until the round is written.
/// </summary>
/// <param name="Batches">The edits' batches' money.</param>
/// <param name="Providers">The edits' providers' load: in flight now, and spent and reserved on <paramref name="Day"/>.</param>
/// <param name="Day">The store clock's UTC day, which daily budgets count.</param>
public sealed record FeedCandidates(
    IReadOnlyList<EditRecord> Edits,
    IReadOnlyDictionary<long, BatchMoney> Batches,
    IReadOnlyDictionary<string, ProviderLoad> Providers,
    DateOnly Day);

/// <summary>A batch's budget (null for none), settled spend and open reservations.</summary>
public sealed record BatchMoney(decimal? BudgetUsd, decimal SpentUsd, decimal ReservedUsd);

/// <summary>A provider account's edits in flight (<see cref="EditStates.InFlight"/>), and its settled spend and open reservations on the day.</summary>
public sealed record ProviderLoad(int InFlight, decimal DaySpentUsd, decimal DayReservedUsd);

/// <summary>What becomes of one fed edit.</summary>
public abstract record FeedDecision
{
    private FeedDecision()
    {
    }

    /// <summary>Hand it to Hangfire, reserving <paramref name="ReserveUsd"/> (the most its task can cost) against the budgets.</summary>
    public sealed record Queue(decimal ReserveUsd) : FeedDecision;

    /// <summary>Park it until an operator acts (or the day rolls over): a budget would be exceeded.</summary>
    public sealed record Hold(string Reason) : FeedDecision;

    /// <summary>Leave it pending for a later round (its provider is at its cap).</summary>
    public sealed record Skip : FeedDecision
    {
        public static Skip Instance { get; } = new();
    }
}

/// <summary>Decides the edits of one feeder round; runs inside the store's transaction, so it does no I/O.</summary>
public interface IFeedPolicy
{
    /// <summary>One decision per edit, in the order of <see cref="FeedCandidates.Edits"/>.</summary>
    IReadOnlyList<FeedDecision> Decide(FeedCandidates candidates);
}

using System.Globalization;
using QwenBatch.Providers;

namespace QwenBatch.Feeding;

/// <summary>
/// The single place an edit's money and load are decided before it is handed to Hangfire. Each edit reserves the most its
/// task can cost (n × the provider's price per image) against its batch budget and, when its provider has one, the
/// account's daily budget; both are checked against what is spent and reserved as last committed plus what this round
/// reserved before it, so no number of feeders can exceed either. An edit that does not fit is held with a reason naming
/// the limit; one whose provider is at its <c>MaxInFlight</c> waits for a later round; one whose provider this server
/// has not configured is held with a reason saying so.
/// </summary>
public sealed class FeedPolicy(ProviderRegistry providers) : IFeedPolicy
{
    public IReadOnlyList<FeedDecision> Decide(FeedCandidates candidates)
    {
        var batchReserved = new Dictionary<long, decimal>();
        var dayReserved = new Dictionary<string, decimal>(StringComparer.OrdinalIgnoreCase);
        var queued = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var decisions = new List<FeedDecision>(candidates.Edits.Count);
        foreach (var edit in candidates.Edits)
        {
            if (providers.Find(edit.Provider) is not { } account)
            {
                // Held, not thrown: one batch on a provider this server cannot reach must not stop the round for every other.
                decisions.Add(new FeedDecision.Hold(UnknownProviderHoldReason(edit.Provider)));
                continue;
            }

            var load = candidates.Providers.TryGetValue(edit.Provider, out var l) ? l : new ProviderLoad(0, 0, 0);
            var alreadyQueued = queued.GetValueOrDefault(edit.Provider);
            if (account.Options.MaxInFlight is { } cap && load.InFlight + alreadyQueued >= cap)
            {
                decisions.Add(FeedDecision.Skip.Instance);
                continue;
            }

            var maxCost = edit.Spec.N * account.Options.PricePerImage;
            var money = candidates.Batches[edit.BatchId];
            var reservedHere = batchReserved.GetValueOrDefault(edit.BatchId);
            if (money.BudgetUsd is { } budget && money.SpentUsd + money.ReservedUsd + reservedHere + maxCost > budget)
            {
                decisions.Add(new FeedDecision.Hold(BudgetHoldReason(money, reservedHere, maxCost)));
                continue;
            }

            var todayHere = dayReserved.GetValueOrDefault(edit.Provider);
            if (account.Options.DailyBudgetUsd is { } daily && load.DaySpentUsd + load.DayReservedUsd + todayHere + maxCost > daily)
            {
                decisions.Add(new FeedDecision.Hold(DailyHoldReason(account, load with { DayReservedUsd = load.DayReservedUsd + todayHere }, maxCost, candidates.Day)));
                continue;
            }

            batchReserved[edit.BatchId] = reservedHere + maxCost;
            dayReserved[edit.Provider] = todayHere + maxCost;
            queued[edit.Provider] = alreadyQueued + 1;
            decisions.Add(new FeedDecision.Queue(maxCost));
        }

        return decisions;
    }

    /// <summary>Names the provider, the ones this server has, and how to go on.</summary>
    public string UnknownProviderHoldReason(string provider) =>
        $"held: provider '{provider}' is not configured on the server that fed it (configured: {string.Join(", ", providers.Names.Order(StringComparer.Ordinal))}); configure it there, then release the edit with 'qwenbatch retry <batch> --held-only'";

    /// <summary>Names the budget, what is spent and reserved, and what the edit needs.</summary>
    public static string BudgetHoldReason(BatchMoney money, decimal reservedHere, decimal maxCost) => string.Create(CultureInfo.InvariantCulture,
        $"held: the batch budget of ${money.BudgetUsd:0.00##} would be exceeded (spent ${money.SpentUsd:0.00##}, reserved ${money.ReservedUsd + reservedHere:0.00##}, this edit needs up to ${maxCost:0.00##}); raise it with --budget");

    /// <summary>Names the provider, the cap, what is spent and reserved today, and when the edit resumes.</summary>
    public static string DailyHoldReason(ProviderAccount account, ProviderLoad load, decimal maxCost, DateOnly day) => string.Create(CultureInfo.InvariantCulture,
        $"held: the {account.Name} daily budget of ${account.Options.DailyBudgetUsd:0.00##} would be exceeded on {day:yyyy-MM-dd} (UTC) (spent today ${load.DaySpentUsd:0.00##}, reserved ${load.DayReservedUsd:0.00##}, this edit needs up to ${maxCost:0.00##}); it resumes by itself after 00:00 UTC or when DailyBudgetUsd is raised");
}

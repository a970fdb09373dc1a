using Microsoft.Extensions.Logging;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.FlowControl;

/// <summary>
/// Resumes jobs a provider account's daily budget held: every <see cref="Interval"/>, and right after 00:00 UTC, each
/// account with a <c>DailyBudgetUsd</c> gets its held jobs back to pending as far as today's room allows. The cap itself
/// is enforced by the reservation before each submit; this loop only decides when a held job gets another look, so a
/// worker started with a raised cap releases them too.
/// </summary>
public sealed partial class DailyBudgetLoop(IJobStore store, ProviderRegistry providers, TimeProvider time, ILogger<DailyBudgetLoop> logger) : IServerLoop
{
    /// <summary>How often held jobs get another look when the day has not rolled over.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    public async Task RunAsync(string serverId, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await ReleaseAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogFailed(ex);
            }

            try
            {
                await Task.Delay(NextWait(time.GetUtcNow()), time, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One look at every capped account; returns the jobs released.</summary>
    public async Task<int> ReleaseAsync(CancellationToken ct)
    {
        var released = 0;
        foreach (var name in providers.Names)
        {
            var account = providers.Get(name);
            if (account.Options.DailyBudgetUsd is not { } cap)
            {
                continue;
            }

            var count = await store.ReleaseHeldWithinDailyBudgetAsync(new DailyBudgetRelease(account.Name, cap, account.Options.PricePerImage), ct);
            if (count > 0)
            {
                LogReleased(count, account.Name, cap);
            }

            released += count;
        }

        return released;
    }

    /// <summary>The interval, or less when 00:00 UTC comes sooner (a second after it, so the store's clock is past it too).</summary>
    public static TimeSpan NextWait(DateTimeOffset now)
    {
        var utc = now.ToUniversalTime();
        var midnight = new DateTimeOffset(utc.Date.AddDays(1), TimeSpan.Zero) + TimeSpan.FromSeconds(1);
        var untilMidnight = midnight - utc;
        return untilMidnight < Interval ? untilMidnight : Interval;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Released {Count} held job(s): the {Provider} daily budget of {Cap} USD has room")]
    private partial void LogReleased(int count, string provider, decimal cap);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Releasing jobs held by a daily budget failed; trying again at the next interval")]
    private partial void LogFailed(Exception ex);
}

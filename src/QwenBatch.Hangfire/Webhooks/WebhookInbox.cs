using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Polling;
using QwenBatch.Providers.WaveSpeed;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Webhooks;

/// <summary>
/// The deliveries <c>serve</c> has answered and not yet acted on. The receiver answers the provider at once and posts
/// here; this loop finds the parked edits the deliveries name (several at a time) and writes their moves as the poller
/// writes its answers, so a delivered edit goes to its download or its failure with no status call. A delivery lost
/// here (the process stopped, the store was away) is not lost to the edit: the poller looks at it after its fallback time.
/// </summary>
public sealed partial class WebhookInbox(IWebhookStore store, PollStep step, VerdictWriter writer, ILogger<WebhookInbox> logger) : BackgroundService
{
    /// <summary>Deliveries held at most; beyond it the receiver answers 503 and the provider delivers again later.</summary>
    public const int Capacity = 10_000;

    private const int Round = 500;

    private readonly Channel<(string Provider, WebhookDelivery Delivery)> _deliveries =
        Channel.CreateBounded<(string, WebhookDelivery)>(new BoundedChannelOptions(Capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private readonly string _by = $"webhook@{Environment.MachineName}";

    /// <summary>Takes a verified delivery; false when the inbox is full.</summary>
    public bool TryPost(string provider, WebhookDelivery delivery) => _deliveries.Writer.TryWrite((provider, delivery));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reader = _deliveries.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken))
            {
                var round = new List<(string Provider, WebhookDelivery Delivery)>();
                while (round.Count < Round && reader.TryRead(out var item))
                {
                    round.Add(item);
                }

                try
                {
                    await ActAsync(round);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogActFailed(ex, round.Count);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task ActAsync(IReadOnlyList<(string Provider, WebhookDelivery Delivery)> round)
    {
        var verdicts = new List<PollVerdict>();
        foreach (var group in round.GroupBy(d => d.Provider, StringComparer.Ordinal))
        {
            var byTask = group.GroupBy(d => d.Delivery.RequestId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Delivery, StringComparer.Ordinal);
            var parked = await store.FindAtProviderAsync(group.Key, [.. byTask.Keys], CancellationToken.None);
            foreach (var edit in parked)
            {
                if (step.Delivered(edit, byTask[edit.RequestId!].Result) is { } verdict)
                {
                    verdicts.Add(verdict);
                }
            }

            if (parked.Count < byTask.Count)
            {
                LogNotParked(group.Key, byTask.Count - parked.Count);
            }
        }

        if (verdicts.Count > 0)
        {
            var moved = (await writer.WriteAsync(verdicts, _by)).Count(m => m is not null);
            LogActed(verdicts.Count, moved);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Webhook deliveries moved {Moved} of {Count} parked edit(s) on")]
    private partial void LogActed(int count, int moved);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Count} {Provider} webhook deliveries named no parked edit (unknown, or already moved on)")]
    private partial void LogNotParked(string provider, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Acting on {Count} webhook deliveries failed; their edits are polled after their fallback time")]
    private partial void LogActFailed(Exception ex, int count);
}

using QwenBatch.Edits;

namespace QwenBatch.Dashboard.Tests.Webhooks;

/// <summary>A fleet with WaveSpeed webhooks on: edits finish on their deliveries, with no status call.</summary>
public sealed class WebhookDeliveryTests(DeliveringServe serve) : IClassFixture<DeliveringServe>
{
    [Fact]
    public async Task Batch_WithWebhooksOn_EveryEditFinishesOnItsDeliveryWithoutAStatusCall()
    {
        var batch = await serve.UploadAsync("webhooks-delivered", 6);

        var edits = await serve.WaitForAsync(batch, e => e.Count == 6 && e.All(x => x.State == EditState.Succeeded), "succeeded");

        var stats = await serve.SimulatorStatsAsync();
        stats.GetProperty("webhooks_delivered").GetInt64().ShouldBe(6);
        (stats.GetProperty("status_calls").GetInt64() + stats.GetProperty("result_calls").GetInt64()).ShouldBe(0, "no edit was polled");
        foreach (var edit in edits)
        {
            edit.Polls.ShouldBe(0);
            var history = await serve.Store.GetHistoryAsync(edit.Id, CancellationToken.None);
            history.Single(h => h.From == EditState.AtProvider).ServerId.ShouldStartWith("webhook@", customMessage: "the delivery moved it on");
        }
    }
}

/// <summary>Every delivery lost: polling stays the fallback.</summary>
public sealed class LostWebhookTests(LosingServe serve) : IClassFixture<LosingServe>
{
    [Fact]
    public async Task Batch_WithEveryDeliveryLost_FinishesByTheFallbackPoll()
    {
        var batch = await serve.UploadAsync("webhooks-lost", 4);

        var edits = await serve.WaitForAsync(batch, e => e.Count == 4 && e.All(x => x.State == EditState.Succeeded), "succeeded");

        var stats = await serve.SimulatorStatsAsync();
        stats.GetProperty("webhooks_dropped").GetInt64().ShouldBe(4);
        stats.GetProperty("webhooks").GetInt64().ShouldBe(0);
        (stats.GetProperty("status_calls").GetInt64() + stats.GetProperty("result_calls").GetInt64()).ShouldBeGreaterThanOrEqualTo(4);
        edits.ShouldAllBe(e => e.Polls >= 0 && e.CostUsd == 0.02m);
    }
}

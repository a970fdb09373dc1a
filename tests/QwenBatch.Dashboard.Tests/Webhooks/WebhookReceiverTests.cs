using System.Net;
using QwenBatch.Edits;

namespace QwenBatch.Dashboard.Tests.Webhooks;

/// <summary>
/// serve's receiver, open to the world at <c>/webhooks/wavespeed</c>: nothing unsigned, mis-signed, stale, oversized,
/// replayed or for an unknown task changes anything; a good delivery moves its parked edit on. The edits here stay parked
/// (the simulator's own deliveries and the fallback poll are ten minutes away), and the test posts deliveries itself.
/// </summary>
public sealed class WebhookReceiverTests(ParkedServe serve) : IClassFixture<ParkedServe>
{
    [Fact]
    public async Task Delivery_SignedAsDocumented_MovesItsEditOnAndAReplayOfItsIdChangesNothing()
    {
        var (batch, edits) = await ParkedAsync("receiver-good", 3);
        var (delivered, replayedFor, witness) = (edits[0], edits[1], edits[2]);
        var body = await FinishedPredictionAsync(delivered.RequestId!);

        using (var accepted = await serve.DeliverAsync(body, "msg-good", DateTimeOffset.UtcNow))
        {
            accepted.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        var after = await serve.WaitForAsync(batch, e => e.Single(x => x.Id == delivered.Id).State == EditState.Succeeded, "finished the delivered edit");
        after.Single(x => x.Id == delivered.Id).Polls.ShouldBe(0, "no status call");

        // The same id again, now over another task's body (validly signed): taken as a replay, answered, and ignored.
        var replay = (await FinishedPredictionAsync(replayedFor.RequestId!)).Replace("\"completed\"", "\"failed\"", StringComparison.Ordinal);
        using (var duplicate = await serve.DeliverAsync(replay, "msg-good", DateTimeOffset.UtcNow))
        {
            duplicate.StatusCode.ShouldBe(HttpStatusCode.OK);
            (await duplicate.Content.ReadAsStringAsync()).ShouldContain("duplicate");
        }

        // The inbox acts in order: once a later delivery's edit moved, the replay would have moved its own before it.
        using (var later = await serve.DeliverAsync(await FinishedPredictionAsync(witness.RequestId!), "msg-witness", DateTimeOffset.UtcNow))
        {
            later.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        var final = await serve.WaitForAsync(batch, e => e.Single(x => x.Id == witness.Id).State == EditState.Succeeded, "finished the witness");
        final.Single(x => x.Id == replayedFor.Id).State.ShouldBe(EditState.AtProvider);
    }

    [Fact]
    public async Task Delivery_NotSignedMisSignedOrStale_IsRefused401AndChangesNothing()
    {
        var (batch, edits) = await ParkedAsync("receiver-refused", 1);
        var body = await FinishedPredictionAsync(edits[0].RequestId!);
        var now = DateTimeOffset.UtcNow;
        var stale = now.AddSeconds(-301);

        var answers = new List<HttpStatusCode>();
        foreach (var attempt in new[]
        {
            serve.DeliverAsync(body, "msg-unsigned", now, withHeaders: false),
            serve.DeliverAsync(body, "msg-mis-signed", now, signature: WebhookServe.Sign("msg-mis-signed", now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), body + " ")),
            serve.DeliverAsync(body, "msg-stale", stale),
            serve.DeliverAsync(body, "msg-wrong-version", now, signature: "v1," + WebhookServe.Sign("msg-wrong-version", now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), body)[3..]),
        })
        {
            using var response = await attempt;
            answers.Add(response.StatusCode);
            (await response.Content.ReadAsStringAsync()).ShouldNotContain(WebhookServe.Secret[6..]);
        }

        answers.ShouldAllBe(s => s == HttpStatusCode.Unauthorized);
        await NothingChangedAsync(batch, edits);
        var metrics = await serve.MetricsAsync();
        foreach (var outcome in new[] { "not_signed", "bad_signature", "stale" })
        {
            metrics.ShouldContain(line => line.StartsWith("qwenbatch_webhooks_received_total{", StringComparison.Ordinal)
                && line.Contains($"outcome=\"{outcome}\"", StringComparison.Ordinal) && line.Contains("provider=\"wavespeed\"", StringComparison.Ordinal),
                $"the refusal '{outcome}' is counted for the operator");
        }
    }

    [Fact]
    public async Task Delivery_LargerThanTheLimit_IsRefused413()
    {
        var (batch, edits) = await ParkedAsync("receiver-oversized", 1);
        var body = (await FinishedPredictionAsync(edits[0].RequestId!)).TrimEnd('}') + ",\"padding\":\"" + new string('x', 1024 * 1024) + "\"}";

        using var response = await serve.DeliverAsync(body, "msg-oversized", DateTimeOffset.UtcNow);

        response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        await NothingChangedAsync(batch, edits);
    }

    [Fact]
    public async Task Delivery_ForATaskNoEditAwaits_IsAnsweredAndChangesNothing()
    {
        var (batch, edits) = await ParkedAsync("receiver-unknown", 1);
        var body = (await FinishedPredictionAsync(edits[0].RequestId!)).Replace(edits[0].RequestId!, "sim_unknown_task", StringComparison.Ordinal);

        using (var response = await serve.DeliverAsync(body, "msg-unknown", DateTimeOffset.UtcNow))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        using (var notAPrediction = await serve.DeliverAsync("{\"hello\":1}", "msg-not-a-prediction", DateTimeOffset.UtcNow))
        {
            notAPrediction.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        }

        await NothingChangedAsync(batch, edits);
    }

    /// <summary>A batch whose edits are all parked at the provider.</summary>
    private async Task<(long Batch, IReadOnlyList<EditRecord> Edits)> ParkedAsync(string name, int count)
    {
        var batch = await serve.UploadAsync(name, count);
        var edits = await serve.WaitForAsync(batch, e => e.Count == count && e.All(x => x.State == EditState.AtProvider), "had every edit at the provider");
        return (batch, [.. edits.OrderBy(e => e.Id)]);
    }

    /// <summary>The prediction once the simulator finished it, as WaveSpeed would deliver it.</summary>
    private async Task<string> FinishedPredictionAsync(string requestId)
    {
        for (var i = 0; i < 200; i++)
        {
            var body = await serve.PredictionAsync(requestId);
            if (body.Contains("\"completed\"", StringComparison.Ordinal))
            {
                return body;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"The simulator never finished {requestId}.");
    }

    /// <summary>
    /// Every edit still parked as it was. A refused delivery never reaches the inbox; one that did is acted on in order, so
    /// a delivery posted after it for a task no edit awaits has been handled once the inbox is seen to act again: a signed
    /// delivery for another batch's edit is the marker.
    /// </summary>
    private async Task NothingChangedAsync(long batch, IReadOnlyList<EditRecord> before)
    {
        var (markerBatch, marker) = await ParkedAsync($"marker-{batch}", 1);
        using (var response = await serve.DeliverAsync(await FinishedPredictionAsync(marker[0].RequestId!), $"msg-marker-{batch}", DateTimeOffset.UtcNow))
        {
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted);
        }

        await serve.WaitForAsync(markerBatch, e => e.Single().State != EditState.AtProvider, "moved the marker on");
        var now = await serve.Store.GetEditsAsync(batch, CancellationToken.None);
        now.ShouldAllBe(e => e.State == EditState.AtProvider && e.Polls == 0);
        now.Select(e => e.Id).Order().ShouldBe(before.Select(e => e.Id).Order());
    }
}

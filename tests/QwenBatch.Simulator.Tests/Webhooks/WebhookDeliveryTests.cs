using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using QwenBatch.Simulator.Tests.TestSupport;
using QwenBatch.Simulator.Webhooks;
using QwenBatch.Testing.Http;
using QwenBatch.Testing.Time;

namespace QwenBatch.Simulator.Tests.Webhooks;

/// <summary>
/// WaveSpeed's <c>?webhook=</c> over real loopback HTTP on a fake clock: the simulator POSTs the result when the task
/// ends, signed as WaveSpeed documents, retried when refused; a receiver here records it and checks the signature itself.
/// Moving the fake clock runs the due deliveries before Advance returns, so "nothing was sent" is checked at once; what
/// the receiver gets arrives on other threads, so that is waited for.
/// </summary>
public sealed class WebhookDeliveryTests
{
    private const string Submit = "api/v3/wavespeed-ai/qwen-image/edit-plus";
    private const string Body = """{"prompt":"white studio background","images":["https://example.com/a.png"],"size":"320*256","output_format":"png"}""";
    private const string Secret = "whsec_c2ltdWxhdG9yLXRlc3Qtc2VjcmV0";

    [Fact]
    public async Task Submit_WithWebhook_PostsTheResultWhenTheTaskCompletesWithoutAnyPoll()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook();
        await using var sim = await StartAsync(time, _ => { });
        var id = await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromSeconds(1));
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksDelivered == 1, "the delivery");

        sim.Host.GetStats().ResultCalls.ShouldBe(0, "nobody polled");
        var delivery = hook.Requests.ShouldHaveSingleItem();
        delivery.Method.ShouldBe("POST");
        delivery.ContentType.ShouldStartWith("application/json");
        delivery.Headers["webhook-id"].ShouldMatch("^[0-9a-f]{32}$");
        delivery.Headers["webhook-signature"].ShouldMatch("^v3,[0-9a-f]{64}$");
        WebhookCheck.Verifies(delivery, Secret).ShouldBeTrue();
        var age = time.GetUtcNow().ToUnixTimeSeconds() - WebhookCheck.Timestamp(delivery);
        age.ShouldBeInRange(0, WebhookCheck.MaxAgeSeconds);

        var body = JsonNode.Parse(delivery.Body)!.AsObject();
        body["id"]!.GetValue<string>().ShouldBe(id);
        body["model"]!.GetValue<string>().ShouldBe("wavespeed-ai/qwen-image/edit-plus");
        body["status"]!.GetValue<string>().ShouldBe("completed");
        body["error"]!.GetValue<string>().ShouldBe("");
        body["outputs"]!.AsArray().Single()!.GetValue<string>().ShouldStartWith(sim.Host.BaseUrl.AbsoluteUri + "_sim/files/" + id);
        body["has_nsfw_contents"]!.AsArray().Single()!.GetValue<bool>().ShouldBeFalse();
        body["urls"]!["get"]!.GetValue<string>().ShouldBe($"{sim.Host.BaseUrl.AbsoluteUri}api/v3/predictions/{id}/result");
        body["created_at"]!.GetValue<string>().ShouldBe("2026-01-01T00:00:00.000Z");
        body["timings"]!["inference"]!.GetValue<long>().ShouldBe(60);
        JsonNode.DeepEquals(body["input"], JsonNode.Parse(Body)).ShouldBeTrue("input is the submit's body");
        body.Remove("input");
        JsonNode.DeepEquals(body, await ResultDataAsync(sim, id)).ShouldBeTrue("the body is the result endpoint's data, plus input");
    }

    [Fact]
    public async Task Submit_WithWebhook_FailedTaskPostsFailedWithTheErrorAndNoOutputs()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook();
        await using var sim = await StartAsync(time, o => o.FailRate = 1);
        var id = await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromSeconds(1));
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksDelivered == 1, "the delivery");

        var delivery = hook.Requests.ShouldHaveSingleItem();
        WebhookCheck.Verifies(delivery, Secret).ShouldBeTrue();
        var body = JsonNode.Parse(delivery.Body)!.AsObject();
        body["status"]!.GetValue<string>().ShouldBe("failed");
        body["error"]!.GetValue<string>().ShouldNotBeNullOrWhiteSpace();
        body["outputs"]!.AsArray().ShouldBeEmpty();
        body.Remove("input");
        JsonNode.DeepEquals(body, await ResultDataAsync(sim, id)).ShouldBeTrue();
    }

    [Fact]
    public async Task Delivery_Answered500_IsRetriedOneSecondLaterWithTheSameIdFreshlySignedAndCounted()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook(HttpStatusCode.InternalServerError);
        await using var sim = await StartAsync(time, _ => { });
        await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromSeconds(1));
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksFailed == 1, "the first attempt to fail");
        time.Advance(TimeSpan.FromMilliseconds(999));
        sim.Host.GetStats().Webhooks.ShouldBe(1, "the retry waits 1 s");
        time.Advance(TimeSpan.FromMilliseconds(1));
        sim.Host.GetStats().Webhooks.ShouldBe(2);
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksDelivered == 1, "the retry's delivery");

        var (first, second) = (hook.Requests[0], hook.Requests[1]);
        second.Headers["webhook-id"].ShouldBe(first.Headers["webhook-id"]);
        second.Body.ShouldBe(first.Body);
        WebhookCheck.Timestamp(second).ShouldBe(WebhookCheck.Timestamp(first) + 1);
        second.Headers["webhook-signature"].ShouldNotBe(first.Headers["webhook-signature"]);
        WebhookCheck.Verifies(first, Secret).ShouldBeTrue();
        WebhookCheck.Verifies(second, Secret).ShouldBeTrue();
        var (code, stats) = await sim.GetAsync("_sim/stats");
        code.ShouldBe(HttpStatusCode.OK);
        stats.GetProperty("webhooks").GetInt64().ShouldBe(2);
        stats.GetProperty("webhooks_delivered").GetInt64().ShouldBe(1);
        stats.GetProperty("webhooks_failed").GetInt64().ShouldBe(1);
        stats.GetProperty("webhooks_dropped").GetInt64().ShouldBe(0);
    }

    [Fact]
    public async Task Delivery_RefusedEveryTime_StopsAfterFiveAttemptsOneTwoFourEightSecondsApart()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook([.. Enumerable.Repeat(HttpStatusCode.ServiceUnavailable, 6)]);
        await using var sim = await StartAsync(time, _ => { });
        await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromSeconds(1));
        for (var attempt = 1; attempt < WebhookSchedule.MaxAttempts; attempt++)
        {
            await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksFailed == attempt, $"attempt {attempt} to fail");
            time.Advance(TimeSpan.FromSeconds(1 << (attempt - 1)));
        }

        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksFailed == 5, "the last attempt to fail");
        time.Advance(TimeSpan.FromHours(1));

        sim.Host.GetStats().Webhooks.ShouldBe(5);
        sim.Host.GetStats().WebhooksDelivered.ShouldBe(0);
        var stamps = hook.Requests.Select(WebhookCheck.Timestamp).ToList();
        stamps.Zip(stamps.Skip(1), (a, b) => b - a).ShouldBe([1L, 2L, 4L, 8L]);
        hook.Requests.Select(r => r.Headers["webhook-id"]).Distinct().ShouldHaveSingleItem();
    }

    [Fact]
    public async Task WebhookDropRateOne_SendsNothingAndCountsTheEventDropped()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook();
        await using var sim = await StartAsync(time, o => o.WebhookDropRate = 1);
        await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromHours(1));

        var stats = sim.Host.GetStats();
        stats.WebhooksDropped.ShouldBe(1);
        stats.Webhooks.ShouldBe(0);
        hook.Requests.ShouldBeEmpty();
    }

    [Fact]
    public async Task WebhookDuplicateRateOne_SendsTheSameEventTwiceUnderOneId()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook();
        await using var sim = await StartAsync(time, o => o.WebhookDuplicateRate = 1);
        await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromSeconds(1));
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksDelivered == 2, "both copies");

        hook.Requests.Count.ShouldBe(2);
        hook.Requests[1].Headers["webhook-id"].ShouldBe(hook.Requests[0].Headers["webhook-id"]);
        hook.Requests[1].Body.ShouldBe(hook.Requests[0].Body);
        hook.Requests.ShouldAllBe(r => WebhookCheck.Verifies(r, Secret));
        sim.Host.GetStats().Webhooks.ShouldBe(2);
        sim.Host.GetStats().Faults!["webhook_duplicated"].ShouldBe(1);
    }

    [Fact]
    public async Task WebhookBadSignatureRateOne_SignsEveryAttemptOfTheEventWrongly()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook(HttpStatusCode.Unauthorized);
        await using var sim = await StartAsync(time, o => o.WebhookBadSignatureRate = 1);
        await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromSeconds(1));
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksFailed == 1, "the refused attempt");
        time.Advance(TimeSpan.FromSeconds(1));
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksDelivered == 1, "the retry");

        hook.Requests.Count.ShouldBe(2);
        hook.Requests.ShouldAllBe(r => r.Headers["webhook-signature"].StartsWith("v3,", StringComparison.Ordinal) && r.Headers["webhook-signature"].Length == 67);
        hook.Requests.ShouldAllBe(r => !WebhookCheck.Verifies(r, Secret));
        sim.Host.GetStats().Faults!["webhook_bad_signature"].ShouldBe(1);
    }

    [Fact]
    public async Task WebhookDelay_FirstAttemptWaitsThatLongAfterTheTaskEnds()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook();
        await using var sim = await StartAsync(time, o => (o.WebhookDelayMin, o.WebhookDelayMax) = (TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30)));
        await SubmitAsync(sim, hook.Url);

        time.Advance(TimeSpan.FromSeconds(30));
        sim.Host.GetStats().Webhooks.ShouldBe(0, "the task ended at 0.06 s, so the delivery is due at 30.06 s");
        time.Advance(TimeSpan.FromMilliseconds(60));
        sim.Host.GetStats().Webhooks.ShouldBe(1);
        await WebhookCheck.UntilAsync(() => sim.Host.GetStats().WebhooksDelivered == 1, "the delivery");

        WebhookCheck.Timestamp(hook.Requests.ShouldHaveSingleItem()).ShouldBe(TestClock.Start.ToUnixTimeSeconds() + 30);
    }

    [Fact]
    public async Task CanceledTask_SendsNoWebhook()
    {
        var time = TestClock.Create();
        using var hook = new LoopbackHook();
        await using var sim = await StartAsync(time, _ => { });
        var id = await SubmitAsync(sim, hook.Url);
        time.Advance(TimeSpan.FromMilliseconds(30));

        var (code, cancel) = await sim.PutAsync($"{SimulatorScope.Queue}/requests/{id}/cancel");
        time.Advance(TimeSpan.FromHours(1));

        code.ShouldBe(HttpStatusCode.OK);
        cancel.GetProperty("status").GetString().ShouldBe("CANCELLATION_REQUESTED");
        var stats = sim.Host.GetStats();
        stats.Webhooks.ShouldBe(0);
        stats.WebhooksDropped.ShouldBe(0);
        hook.Requests.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("webhook=ftp%3A%2F%2Fexample.com%2Fhooks")]
    [InlineData("webhook=not%20a%20url")]
    [InlineData("webhook=%2Fhooks%2Frelative")]
    [InlineData("webhook=")]
    [InlineData("webhook=https%3A%2F%2Fa.example%2Fh&webhook=https%3A%2F%2Fb.example%2Fh")]
    public async Task Submit_WithBadWebhookUrl_Answers400InTheWrapperAndAcceptsNothing(string query)
    {
        await using var sim = await StartAsync(TestClock.Create(), _ => { });

        using var response = await sim.Client.PostAsync($"{Submit}?{query}", SimulatorScope.Json(Body));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var json = await SimulatorScope.ReadJsonAsync(response);
        json.GetProperty("code").GetInt32().ShouldBe(400);
        json.GetProperty("message").GetString()!.ShouldStartWith("webhook: one absolute http(s) URL was expected");
        sim.Host.GetStats().Submits.ShouldBe(0);
    }

    [Fact]
    public async Task Dispose_WithAnAttemptUnderWayAndOneDue_ReturnsWithoutWaitingForTheReceiver()
    {
        var time = TestClock.Create();
        var answered = new TaskCompletionSource();
        var received = 0;
        await using var silent = new LoopbackServer(async _ =>
        {
            Interlocked.Increment(ref received);
            await answered.Task;
        });
        try
        {
            var sim = await StartAsync(time, _ => { });
            await using (sim)
            {
                await SubmitAsync(sim, silent.BaseUrl + "hooks");
                time.Advance(TimeSpan.FromSeconds(1));
                await WebhookCheck.UntilAsync(() => Volatile.Read(ref received) == 1, "the attempt to reach the receiver");
                await SubmitAsync(sim, silent.BaseUrl + "hooks");

                // A bound on a hang, not a timing: an attempt not cancelled would hold the stop for its 10 s timeout.
                await sim.Host.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            }

            time.Advance(TimeSpan.FromHours(1));
            var stats = sim.Host.GetStats();
            stats.Webhooks.ShouldBe(1, "the second task's delivery was cancelled with the stop");
            (stats.WebhooksDelivered + stats.WebhooksFailed).ShouldBe(0, "an attempt cut by the stop is neither");
        }
        finally
        {
            answered.SetResult();
        }
    }

    private static async Task<SimulatorScope> StartAsync(FakeTimeProvider time, Action<SimulatorOptions> configure)
    {
        var options = SimulatorScope.FastOptions();
        options.WebhookSecret = Secret;
        configure(options);
        return await SimulatorScope.StartAsync(options, time);
    }

    private static async Task<string> SubmitAsync(SimulatorScope sim, string webhook)
    {
        using var response = await sim.Client.PostAsync($"{Submit}?webhook={Uri.EscapeDataString(webhook)}", SimulatorScope.Json(Body));
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await SimulatorScope.ReadJsonAsync(response)).GetProperty("data").GetProperty("id").GetString()!;
    }

    private static async Task<JsonObject> ResultDataAsync(SimulatorScope sim, string id)
    {
        var text = await sim.Client.GetStringAsync($"api/v3/predictions/{id}/result");
        return JsonNode.Parse(text)!["data"]!.AsObject();
    }
}

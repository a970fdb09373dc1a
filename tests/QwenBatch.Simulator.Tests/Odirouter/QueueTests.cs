using Microsoft.Extensions.Time.Testing;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.Odirouter;

public sealed class QueueTests
{
    private const string Requests = SimulatorScope.Queue + "/requests/";

    [Fact]
    public async Task Submit_BeyondMaxConcurrent_QueuesTasksInOrder()
    {
        var time = new FakeTimeProvider();
        var options = SimulatorScope.FastOptions(100);
        options.MaxConcurrent = 1;
        await using var sim = await SimulatorScope.StartAsync(options, time);

        var submits = new List<(string Id, int Position)>();
        for (var i = 0; i < 3; i++)
        {
            var body = await sim.SubmitAsync();
            submits.Add((body.GetProperty("request_id").GetString()!, body.GetProperty("queue_position").GetInt32()));
        }

        submits.Select(s => s.Position).ShouldBe([0, 0, 1]);
        (await StatusAsync(sim, submits[0].Id)).ShouldBe(("IN_PROGRESS", null));
        (await StatusAsync(sim, submits[1].Id)).ShouldBe(("IN_QUEUE", 0));
        (await StatusAsync(sim, submits[2].Id)).ShouldBe(("IN_QUEUE", 1));

        time.Advance(TimeSpan.FromMilliseconds(100));
        (await StatusAsync(sim, submits[0].Id)).ShouldBe(("COMPLETED", null));
        (await StatusAsync(sim, submits[1].Id)).ShouldBe(("IN_PROGRESS", null));
        (await StatusAsync(sim, submits[2].Id)).ShouldBe(("IN_QUEUE", 0));

        time.Advance(TimeSpan.FromMilliseconds(200));
        foreach (var (id, _) in submits)
            (await sim.StatusOfAsync(id)).ShouldBe("COMPLETED");
        var stats = sim.Host.GetStats();
        stats.MaxConcurrent.ShouldBe(1);
        stats.ChargedImages.ShouldBe(3);
    }

    [Fact]
    public async Task Cancel_QueuedTask_MovesLaterTasksUpAndIsNeverCharged()
    {
        var time = new FakeTimeProvider();
        var options = SimulatorScope.FastOptions(100);
        options.MaxConcurrent = 1;
        await using var sim = await SimulatorScope.StartAsync(options, time);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
            ids.Add((await sim.SubmitAsync()).GetProperty("request_id").GetString()!);

        (await sim.PutAsync(Requests + ids[1] + "/cancel")).Body.GetProperty("status").GetString().ShouldBe("CANCELLATION_REQUESTED");

        (await StatusAsync(sim, ids[1])).ShouldBe(("CANCELED", null));
        (await StatusAsync(sim, ids[2])).ShouldBe(("IN_QUEUE", 0));
        time.Advance(TimeSpan.FromSeconds(1));
        (await sim.StatusOfAsync(ids[1])).ShouldBe("CANCELED");
        (await sim.StatusOfAsync(ids[2])).ShouldBe("COMPLETED");
        sim.Host.GetStats().ChargedImages.ShouldBe(2);
        sim.Host.GetStats().MaxConcurrent.ShouldBe(1);
    }

    [Fact]
    public async Task Submit_WithTwoSlots_RunsTwoAtOnce()
    {
        var time = new FakeTimeProvider();
        var options = SimulatorScope.FastOptions(100);
        options.MaxConcurrent = 2;
        await using var sim = await SimulatorScope.StartAsync(options, time);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
            ids.Add((await sim.SubmitAsync()).GetProperty("request_id").GetString()!);

        (await StatusAsync(sim, ids[1])).ShouldBe(("IN_PROGRESS", null));
        (await StatusAsync(sim, ids[4])).ShouldBe(("IN_QUEUE", 2));
        time.Advance(TimeSpan.FromSeconds(1));

        var stats = sim.Host.GetStats();
        stats.MaxConcurrent.ShouldBe(2);
        stats.ChargedImages.ShouldBe(5);
    }

    private static async Task<(string Status, int? QueuePosition)> StatusAsync(SimulatorScope sim, string id)
    {
        var (_, body) = await sim.GetAsync(Requests + id + "/status");
        int? position = body.TryGetProperty("queue_position", out var p) ? p.GetInt32() : null;
        return (body.GetProperty("status").GetString()!, position);
    }
}

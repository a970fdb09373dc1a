using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Hangfire.Tests.Support;

namespace QwenBatch.Hangfire.Tests.Jobs;

/// <summary>A run of an edit's job that finds the edit caught submitting by another run.</summary>
public sealed class CaughtSubmittingTests
{
    [Fact]
    public async Task SubmitterGone_SubmitsAgainCountingTheUncertainSubmit()
    {
        await using var engine = await TestEngine.StartAsync(new EngineSetup(Backend.Sqlite));
        var edit = await CaughtSubmittingAsync(engine, "killed-host:4242:0badf00d");
        await engine.StartServerAsync();

        await engine.Services.GetRequiredService<EditJobClient>().EnqueueAsync([edit], "test: the job of an edit caught submitting", CancellationToken.None);
        var settled = (await engine.WaitSettledAsync(edit.BatchId)).Single();

        (settled.State, settled.AcceptedSubmits, settled.UncertainSubmits).ShouldBe((EditState.Succeeded, 1, 1));
        (await engine.SimulatorStatsAsync()).Submits.ShouldBe(1);
        (await engine.Store.GetHistoryAsync(edit.Id, CancellationToken.None)).ShouldContain(h => h.Reason != null && h.Reason.StartsWith("its submit was cut off", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SubmitterAliveAndItsPostPossiblyOnItsWay_LooksAgainLaterAndSendsNothing()
    {
        // Scoped to no batch: its feeder leaves the edit to the test, and its workers run whatever job is enqueued.
        await using var engine = await TestEngine.StartAsync(new EngineSetup(Backend.Postgres), new Hosting.EngineScope(-1));
        await engine.StartServerAsync();
        var server = await AnnouncedServerAsync(engine);
        var edit = await CaughtSubmittingAsync(engine, server);

        await engine.Services.GetRequiredService<EditJobClient>().EnqueueAsync([edit], "test: the job of an edit caught submitting", CancellationToken.None);
        var job = (await engine.Store.GetEditAsync(edit.Id, CancellationToken.None))!.HangfireJob!;
        for (var i = 0; i < 100 && engine.JobState(job)?.Name != ScheduledState.StateName; i++)
        {
            await Task.Delay(100);
        }

        var state = engine.JobState(job)!;
        state.Name.ShouldBe(ScheduledState.StateName);
        state.Reason.ShouldContain("may still be on its way");
        (await engine.Store.GetEditAsync(edit.Id, CancellationToken.None))!.State.ShouldBe(EditState.Submitting);
        (await engine.SimulatorStatsAsync()).Submits.ShouldBe(0);
    }

    /// <summary>The name of the engine's one server, once it has announced itself (it does so in the background as it starts).</summary>
    private static async Task<string> AnnouncedServerAsync(TestEngine engine)
    {
        for (var i = 0; i < 100 && engine.Storage.GetMonitoringApi().Servers().Count == 0; i++)
        {
            await Task.Delay(100);
        }

        return engine.Storage.GetMonitoringApi().Servers().ShouldHaveSingleItem("the engine's server should have announced itself").Name;
    }

    /// <summary>An edit moved to submitting by <paramref name="server"/>, as a run that then vanished would leave it.</summary>
    private static async Task<EditRecord> CaughtSubmittingAsync(TestEngine engine, string server)
    {
        var batch = await engine.ImportAsync("caught", 1);
        var queued = (await engine.Edits.FeedAsync(new FeedRequest("test-feeder", 1, batch.Id), engine.Services.GetRequiredService<IFeedPolicy>(), CancellationToken.None)).Single();
        return (await engine.Edits.MoveAsync(queued, queued with { State = EditState.Submitting }, server, reason: null))!;
    }
}

using Hangfire;
using Hangfire.States;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Hangfire.States;
using QwenBatch.Hangfire.Tests.Support;

namespace QwenBatch.Hangfire.Tests.Jobs;

/// <summary>What operators do to running batches (cancel, Hangfire's Delete and Requeue buttons), and fleets of servers.</summary>
public sealed class OperatorTests
{
    private static readonly EngineSetup SlowTasks = new(Backend.Postgres)
    {
        Simulator = new() { LatencyMin = TimeSpan.FromSeconds(30), LatencyMax = TimeSpan.FromSeconds(30), MaxConcurrent = 1000 },
        Worker = new() { FirstPollDelay = TimeSpan.FromSeconds(20), FallbackPollInterval = TimeSpan.FromMilliseconds(200) },
    };

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task CancelBatch_TasksAtTheProviderAreCancelledThereAndTheirJobsDeleted(Backend backend)
    {
        await using var engine = await TestEngine.StartAsync(SlowTasks with { Backend = backend });
        await engine.StartServerAsync();
        var batch = await engine.ImportAsync("cancel", 6);
        await engine.WaitForAsync(batch.Id, e => e.All(x => x.State == EditState.AtProvider), "had every edit at the provider");

        await engine.Edits.CancelBatchAsync(batch.Id, CancellationToken.None);
        var edits = await engine.WaitSettledAsync(batch.Id);

        edits.ShouldAllBe(e => e.State == EditState.Cancelled);
        (await engine.SimulatorStatsAsync()).Cancels.ShouldBe(6);
        foreach (var edit in edits)
        {
            await WaitForJobStateAsync(engine, edit.HangfireJob!, DeletedState.StateName);
        }
    }

    [Fact]
    public async Task DeleteTheEditsJobInTheDashboard_CancelsTheEditAtTheProviderToo()
    {
        await using var engine = await TestEngine.StartAsync(SlowTasks);
        await engine.StartServerAsync();
        var batch = await engine.ImportAsync("delete", 2);
        var edits = await engine.WaitForAsync(batch.Id, e => e.All(x => x.State == EditState.AtProvider), "had every edit at the provider");

        // What the dashboard's Delete button does: a state change through the client, with QwenBatch's filters.
        engine.Client.Delete(edits[0].HangfireJob!).ShouldBeTrue();
        await engine.WaitForAsync(batch.Id, e => e[0].State == EditState.Cancelled, "cancelled the deleted job's edit");

        (await engine.SimulatorStatsAsync()).Cancels.ShouldBe(1);
        (await engine.Store.GetEditAsync(edits[1].Id, CancellationToken.None))!.State.ShouldBe(EditState.AtProvider);
    }

    [Fact]
    public async Task RequeueAFailedEditsJob_RetriesTheEditUnderTheFeederAndItSucceeds()
    {
        // A provider that is down longer than the edit's attempts: the edit ends failed, and its job with it.
        var setup = new EngineSetup(Backend.Sqlite) { Worker = new() { MaxAttempts = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(100), FallbackPollInterval = TimeSpan.FromMilliseconds(200) } };
        await using var down = await Support.SimulatorOnPort.StartAsync(setup.Simulator);
        await using var engine = await TestEngine.StartAsync(setup with { SimulatorUrl = down.Url });
        var url = down.Url;
        await down.StopAsync();
        await engine.StartServerAsync();
        var batch = await engine.ImportAsync("requeue", 1);
        var failed = (await engine.WaitSettledAsync(batch.Id)).Single();
        failed.State.ShouldBe(EditState.Failed);
        await WaitForJobStateAsync(engine, failed.HangfireJob!, FailedState.StateName);

        // The provider is back; an operator presses Requeue on the failed job.
        await using var up = await Support.SimulatorOnPort.StartAsync(setup.Simulator, url.Port);
        engine.Client.Requeue(failed.HangfireJob!).ShouldBeTrue();

        var edit = await engine.WaitForAsync(batch.Id, e => e[0].State == EditState.Succeeded, "succeeded after the requeue");
        edit[0].HangfireJob.ShouldBe(failed.HangfireJob, "the edit keeps its one job");
        engine.JobStates(failed.HangfireJob!)[^1].ShouldBe(SucceededState.StateName);

        // The requeue put the edit back in the backlog, and the feeder queued it again under the batch's limits (the job
        // may have parked as Waiting meanwhile, or found the edit already queued when it ran).
        var history = await engine.Store.GetHistoryAsync(failed.Id, CancellationToken.None);
        var requeued = history.ToList().FindIndex(h => h.From == EditState.Failed && h.To == EditState.Pending);
        requeued.ShouldBeGreaterThan(0);
        history.Skip(requeued + 1).ShouldContain(h => h.From == EditState.Pending && h.To == EditState.Queued && h.ServerId != null);
        up.Stats().Submits.ShouldBe(1);
    }

    [Fact]
    public async Task TwoServersOnOnePostgres_BothWorkAndEveryEditIsSubmittedOnce()
    {
        var setup = new EngineSetup(Backend.Postgres) { Simulator = new() { LatencyMin = TimeSpan.FromMilliseconds(100), LatencyMax = TimeSpan.FromMilliseconds(400), MaxConcurrent = 1000 } };
        await using var first = await TestEngine.StartAsync(setup);
        await using var second = await TestEngine.StartAsync(setup with { Database = first.Database, SimulatorUrl = first.SimulatorUrl });
        await first.StartServerAsync();
        await second.StartServerAsync();
        var batch = await first.ImportAsync("fleet", 200);

        var edits = await first.WaitSettledAsync(batch.Id);

        edits.ShouldAllBe(e => e.State == EditState.Succeeded && e.AcceptedSubmits == 1);
        (await first.SimulatorStatsAsync()).Submits.ShouldBe(200);
        var servers = new HashSet<string>();
        foreach (var edit in edits.Take(200))
        {
            foreach (var entry in await first.Store.GetHistoryAsync(edit.Id, CancellationToken.None))
            {
                if (entry.To == EditState.Submitting && entry.ServerId is { } server)
                {
                    servers.Add(server);
                }
            }
        }

        servers.Count.ShouldBe(2, "both servers submitted edits");
    }

    [Fact]
    public async Task BatchImportedByAnotherProcess_StartsOnAnIdleServer()
    {
        await using var engine = await TestEngine.StartAsync(new EngineSetup(Backend.Postgres));
        await engine.StartServerAsync();

        // Another process's store on the same database: nothing in this process is told of the import.
        await using var elsewhere = new QwenBatch.Storage.PostgreSql.PostgresStore(engine.Database!, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<QwenBatch.Storage.PostgreSql.PostgresStore>.Instance);
        var import = await QwenBatch.Storage.BatchStoreExtensions.ImportBatchAsync(elsewhere,
            new QwenBatch.Batches.NewBatch("elsewhere", "/m.csv", "simulator", Path.Combine(engine.Output, "elsewhere")),
            [new QwenBatch.Batches.NewEdit("a", "h", "simulator", new EditSpec { Prompt = "p", Images = ["https://images.example.test/in.png"] })], CancellationToken.None);

        var edits = await engine.WaitSettledAsync(import.Batch.Id);
        edits.Single().State.ShouldBe(EditState.Succeeded);
    }

    [Fact]
    public async Task EmbeddedEngineStoppedMidBatch_NextProcessResumesWithoutASecondSubmit()
    {
        var setup = new EngineSetup(Backend.Sqlite) { Simulator = new() { LatencyMin = TimeSpan.FromSeconds(2), LatencyMax = TimeSpan.FromSeconds(3), MaxConcurrent = 1000 } };
        await using var first = await TestEngine.StartAsync(setup, new EngineScope(1));
        await first.StartServerAsync();
        var batch = await first.ImportAsync("resume", 30);
        await first.WaitForAsync(batch.Id, e => e.Count(x => x.State == EditState.AtProvider) >= 10, "had edits at the provider");
        await first.StopServerAsync();

        // The next process on the same state folder: its Hangfire storage (in memory) is new, so every unsettled edit forgets
        // the job the first one gave it, as `run` does when it starts.
        await using var second = await TestEngine.StartAsync(setup with { Folder = first.Folder, SimulatorUrl = first.SimulatorUrl }, new EngineScope(batch.Id));
        await second.Edits.ForgetJobsAsync(batch.Id, "second-process", CancellationToken.None);
        await second.StartServerAsync();

        var settled = await second.WaitSettledAsync(batch.Id);
        settled.ShouldAllBe(e => e.State == EditState.Succeeded);
        var stats = await first.SimulatorStatsAsync();
        stats.Submits.ShouldBe(30 + settled.Sum(e => e.UncertainSubmits), "only submits cut off by the stop may be sent twice, and each is counted");
    }

    private static async Task WaitForJobStateAsync(TestEngine engine, string jobId, string state)
    {
        for (var i = 0; i < 300 && engine.JobState(jobId)?.Name != state; i++)
        {
            await Task.Delay(100);
        }

        engine.JobState(jobId)?.Name.ShouldBe(state);
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Core.Tests.Server;
using QwenBatch.Schedules;
using QwenBatch.Server;
using QwenBatch.Storage;
using QwenBatch.Testing.Time;

namespace QwenBatch.Core.Tests.Schedules;

public sealed class ScheduleRunnerTests : IAsyncLifetime
{
    // 2026-06-10 01:59 Europe/Berlin (CEST, +2): one minute before the nightly occurrence.
    private static readonly DateTimeOffset BeforeTwo = new(2026, 6, 9, 23, 59, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset AtTwo = new(2026, 6, 10, 0, 0, 0, TimeSpan.Zero);
    private readonly EngineHarness _engine = new(time: new ManualTimeProvider(BeforeTwo));
    private readonly string _manifest = Path.Combine(Path.GetTempPath(), $"qwenbatch-schedule-{Guid.NewGuid():N}.csv");
    private readonly ScheduleOptions _options = new();

    private CancellationToken Ct => CancellationToken.None;

    public async Task InitializeAsync()
    {
        await _engine.Store.MigrateAsync(Ct);
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,White background,https://example.com/mug.png\ncup,White background,https://example.com/cup.png\n");
        await _engine.Store.AddScheduleAsync(Nightly(), AtTwo, Ct);
    }

    public async Task DisposeAsync()
    {
        File.Delete(_manifest);
        await _engine.DisposeAsync();
    }

    [Fact]
    public async Task TickAsync_TwoWorkersRacingOnOneOccurrence_MakeExactlyOneBatch()
    {
        _engine.Time.Advance(TimeSpan.FromMinutes(1));
        var runners = new[] { Runner(_engine.NewStore()), Runner(_engine.NewStore()) };

        var fired = await Task.WhenAll(runners.Select((r, i) => Task.Run(() => r.TickAsync($"worker-{i}", Ct))));

        fired.SelectMany(f => f).ShouldHaveSingleItem().BatchName.ShouldBe("nightly-20260610-0200");
        var batch = (await _engine.Store.GetBatchesAsync(Ct)).ShouldHaveSingleItem();
        (await _engine.Store.GetJobsAsync(batch.Id, Ct)).Count.ShouldBe(2);
        (await _engine.Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(AtTwo.AddDays(1));
    }

    [Fact]
    public async Task ScheduleLoop_TwoServersOnFakeClock_FireOneBatchPerOccurrence()
    {
        using var stop = new CancellationTokenSource();
        var servers = new[] { _engine.NewStore(), _engine.NewStore() }
            .Select(store => new ScheduleLoop(Runner(store), _options, _engine.Time, NullLogger<ScheduleLoop>.Instance))
            .Select((loop, i) => loop.RunAsync($"worker-{i}", stop.Token)).ToArray();

        await _engine.RunClockUntilAsync(async () => (await _engine.Store.GetOccurrencesAsync("nightly", Ct)).Count == 2, TimeSpan.FromMinutes(10), maxSteps: 400);
        await stop.CancelAsync();
        await Task.WhenAll(servers);

        (await _engine.Store.GetBatchesAsync(Ct)).Select(b => b.Name).Order().ShouldBe(["nightly-20260610-0200", "nightly-20260611-0200"]);
    }

    [Fact]
    public async Task TickAsync_ThreeDaysDownWithCatchUpOnce_RunsOnlyTheLatestOccurrenceOnce()
    {
        _engine.Time.Advance(TimeSpan.FromDays(3));
        var runner = Runner(_engine.Store);

        var first = await runner.TickAsync(EngineHarness.Provider, Ct);
        var second = await runner.TickAsync(EngineHarness.Provider, Ct);

        first.ShouldHaveSingleItem().BatchName.ShouldBe("nightly-20260612-0200");
        second.ShouldBeEmpty();
        (await _engine.Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(AtTwo.AddDays(3));
    }

    [Fact]
    public async Task TickAsync_ThreeDaysDownWithCatchUpSkip_SkipsToNextOccurrence()
    {
        await _engine.Store.RemoveScheduleAsync("nightly", Ct);
        await _engine.Store.AddScheduleAsync(Nightly(CatchUpPolicy.Skip), AtTwo, Ct);
        _engine.Time.Advance(TimeSpan.FromDays(3));

        var fired = await Runner(_engine.Store).TickAsync(EngineHarness.Provider, Ct);

        fired.ShouldBeEmpty();
        (await _engine.Store.GetBatchesAsync(Ct)).ShouldBeEmpty();
        (await _engine.Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(AtTwo.AddDays(3));
    }

    [Fact]
    public async Task TickAsync_ManifestMissingThenRestored_FailsThatOccurrenceAsFailedBatchAndCarriesOn()
    {
        File.Delete(_manifest);
        _engine.Time.Advance(TimeSpan.FromMinutes(1));
        var runner = Runner(_engine.Store);

        var failed = (await runner.TickAsync(EngineHarness.Provider, Ct)).ShouldHaveSingleItem();
        var afterFailure = (await _engine.Store.GetSchedulesAsync(Ct)).Single();
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,White background,https://example.com/mug.png\n");
        _engine.Time.Advance(TimeSpan.FromDays(1));
        var next = (await runner.TickAsync(EngineHarness.Provider, Ct)).ShouldHaveSingleItem();

        failed.ShouldSatisfyAllConditions(() => failed.BatchName.ShouldBe("nightly-20260610-0200"), () => failed.Error!.ShouldContain("does not exist"));
        afterFailure.ShouldSatisfyAllConditions(() => afterFailure.LastError!.ShouldContain("does not exist"), () => afterFailure.LastBatch.ShouldBe("nightly-20260610-0200"));
        var failedBatch = (await _engine.Store.FindBatchAsync("nightly-20260610-0200", Ct)).ShouldNotBeNull();
        failedBatch.Failure!.ShouldContain("does not exist");
        next.BatchName.ShouldBe("nightly-20260611-0200");
        next.Error.ShouldBeNull();
        (await _engine.Store.GetSchedulesAsync(Ct)).Single().LastError.ShouldBeNull();
    }

    [Fact]
    public async Task TickAsync_InvalidManifest_MakesFailedBatchWithEveryErrorInItsErrorsCsvAndNoJobs()
    {
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,,\ncup,White background,\n");
        _engine.Time.Advance(TimeSpan.FromMinutes(1));

        var failed = (await Runner(_engine.Store).TickAsync(EngineHarness.Provider, Ct)).ShouldHaveSingleItem();

        failed.Error!.ShouldContain("error(s); nothing was enqueued");
        var batch = (await _engine.Store.GetBatchesAsync(Ct)).ShouldHaveSingleItem();
        batch.Name.ShouldBe("nightly-20260610-0200");
        (await _engine.Store.GetJobsAsync(batch.Id, Ct)).ShouldBeEmpty();
        var lines = batch.Failure!.Split('\n');
        lines.ShouldContain(l => l.Contains(":2:", StringComparison.Ordinal) && l.Contains("prompt", StringComparison.Ordinal));
        lines.ShouldContain(l => l.Contains(":3:", StringComparison.Ordinal) && l.Contains("images", StringComparison.Ordinal));
        var errorsCsv = await File.ReadAllTextAsync(Path.Combine(batch.StorageDir, QwenBatch.Reports.ErrorsCsvWriter.FileName));
        foreach (var line in lines)
        {
            errorsCsv.ShouldContain(line.Contains('"', StringComparison.Ordinal) ? line.Replace("\"", "\"\"", StringComparison.Ordinal) : line);
        }
    }

    [Fact]
    public async Task TickAsync_ClaimerFailsAfterClaiming_AnotherSchedulerMakesExactlyOneBatchAfterTheLease()
    {
        _engine.Time.Advance(TimeSpan.FromMinutes(1));

        // The first scheduler claims the occurrence, then its import dies (the database went away mid-import; a killed
        // process looks the same to the store): nothing is recorded, the claim stays open.
        var (dying, _) = FlakyStore.Wrap(_engine.NewStore(), (method, call) => method == nameof(IJobStore.ImportBatchAsync));
        await Should.ThrowAsync<IOException>(() => Runner(dying).TickAsync("worker-dies", Ct));
        var other = Runner(_engine.NewStore());
        var withinLease = await other.TickAsync("worker-2", Ct);
        _engine.Time.Advance(_options.ClaimLease + TimeSpan.FromSeconds(1));
        var afterLease = await other.TickAsync("worker-2", Ct);
        var later = await other.TickAsync("worker-2", Ct);

        withinLease.ShouldBeEmpty();
        afterLease.ShouldHaveSingleItem().ShouldSatisfyAllConditions(
            o => o.BatchName.ShouldBe("nightly-20260610-0200"),
            o => o.Occurrence.ShouldBe(AtTwo),
            o => o.Error.ShouldBeNull());
        later.ShouldBeEmpty();
        var batch = (await _engine.Store.GetBatchesAsync(Ct)).ShouldHaveSingleItem();
        (await _engine.Store.GetJobsAsync(batch.Id, Ct)).Count.ShouldBe(2);
        (await _engine.Store.GetOccurrencesAsync("nightly", Ct)).ShouldHaveSingleItem().BatchName.ShouldBe("nightly-20260610-0200");
        (await _engine.Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(AtTwo.AddDays(1));
    }

    [Fact]
    public async Task TickAsync_ClaimerDiesAfterItsBatchCommitted_TakeOverResumesThatBatchInsteadOfADouble()
    {
        _engine.Time.Advance(TimeSpan.FromMinutes(1));

        // The claimer's batch went in, and it died before recording the occurrence.
        var (dying, _) = FlakyStore.Wrap(_engine.NewStore(), (method, call) => method == nameof(IJobStore.RecordOccurrenceAsync));
        await Should.ThrowAsync<IOException>(() => Runner(dying).TickAsync("worker-dies", Ct));
        _engine.Time.Advance(_options.ClaimLease + TimeSpan.FromSeconds(1));
        var takenOver = await Runner(_engine.NewStore()).TickAsync("worker-2", Ct);

        takenOver.ShouldHaveSingleItem().BatchName.ShouldBe("nightly-20260610-0200");
        var batch = (await _engine.Store.GetBatchesAsync(Ct)).ShouldHaveSingleItem();
        (await _engine.Store.GetJobsAsync(batch.Id, Ct)).Count.ShouldBe(2);
    }

    [Fact]
    public async Task ScheduleLoop_ClaimerFailingOnFakeClock_TheOtherServerStillMakesOneBatch()
    {
        using var stop = new CancellationTokenSource();
        var (dying, _) = FlakyStore.Wrap(_engine.NewStore(), (method, call) => method == nameof(IJobStore.ImportBatchAsync) && call == 1);
        var servers = new[] { dying, _engine.NewStore() }
            .Select(store => new ScheduleLoop(Runner(store), _options, _engine.Time, NullLogger<ScheduleLoop>.Instance))
            .Select((loop, i) => loop.RunAsync($"worker-{i}", stop.Token)).ToArray();

        // The failing server may win the claim or not; either way the occurrence ends as one batch.
        await _engine.RunClockUntilAsync(async () => (await _engine.Store.GetBatchesAsync(Ct)).Count > 0, TimeSpan.FromSeconds(30), maxSteps: 400);
        await stop.CancelAsync();
        await Task.WhenAll(servers);

        (await _engine.Store.GetBatchesAsync(Ct)).ShouldHaveSingleItem().Name.ShouldBe("nightly-20260610-0200");
        (await _engine.Store.GetOccurrencesAsync("nightly", Ct)).ShouldHaveSingleItem().BatchName.ShouldBe("nightly-20260610-0200");
    }

    [Fact]
    public async Task TriggerAsync_BeforeOccurrence_MakesBatchNowAndKeepsNextAt()
    {
        var schedule = (await _engine.Store.GetSchedulesAsync(Ct)).Single();

        var outcome = await Runner(_engine.Store).TriggerAsync(schedule, EngineHarness.Provider, Ct);

        outcome!.BatchName.ShouldBe("nightly-20260610-0159");
        (await _engine.Store.GetSchedulesAsync(Ct)).Single().NextAt.ShouldBe(AtTwo);
    }

    private ScheduleDefinition Nightly(CatchUpPolicy catchUp = CatchUpPolicy.Once) =>
        new("nightly", "0 2 * * *", "Europe/Berlin", _manifest, "simulator", _engine.StorageDir, CatchUp: catchUp);

    private ScheduleRunner Runner(IJobStore store) => new(store, _options, _engine.Time, NullLogger<ScheduleRunner>.Instance);
}

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
    public async Task TickAsync_ManifestMissingThenRestored_FailsThatOccurrenceAndCarriesOn()
    {
        File.Delete(_manifest);
        _engine.Time.Advance(TimeSpan.FromMinutes(1));
        var runner = Runner(_engine.Store);

        var failed = (await runner.TickAsync(EngineHarness.Provider, Ct)).ShouldHaveSingleItem();
        var afterFailure = (await _engine.Store.GetSchedulesAsync(Ct)).Single();
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,White background,https://example.com/mug.png\n");
        _engine.Time.Advance(TimeSpan.FromDays(1));
        var next = (await runner.TickAsync(EngineHarness.Provider, Ct)).ShouldHaveSingleItem();

        failed.ShouldSatisfyAllConditions(() => failed.BatchName.ShouldBeNull(), () => failed.Error!.ShouldContain("does not exist"));
        afterFailure.LastError!.ShouldContain("does not exist");
        next.BatchName.ShouldBe("nightly-20260611-0200");
        (await _engine.Store.GetSchedulesAsync(Ct)).Single().LastError.ShouldBeNull();
    }

    [Fact]
    public async Task TickAsync_InvalidManifest_RecordsValidationErrorsAndEnqueuesNothing()
    {
        await File.WriteAllTextAsync(_manifest, "id,prompt,images\nmug,,\n");
        _engine.Time.Advance(TimeSpan.FromMinutes(1));

        var failed = (await Runner(_engine.Store).TickAsync(EngineHarness.Provider, Ct)).ShouldHaveSingleItem();

        failed.Error!.ShouldContain("error(s); nothing was enqueued");
        (await _engine.Store.GetBatchesAsync(Ct)).ShouldBeEmpty();
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

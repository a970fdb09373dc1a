using QwenBatch.Edits;
using QwenBatch.Schedules;

namespace QwenBatch.Storage.Tests.Schema;

/// <summary>What every backend's <see cref="IStoreSchema"/> must do, and migration 13 moving a database of the old engine onto Hangfire.</summary>
public abstract class MigrationContract : StoreContract
{
    /// <summary>The schema the engine before Hangfire left: migrations 1 to 12.</summary>
    private const int BeforeHangfire = 12;

    [Fact]
    public async Task MigrateAsync_RunTwice_IsIdempotent()
    {
        var store = OpenStore(await Backend.NewDatabaseAsync());

        await store.MigrateAsync(Ct);
        await store.MigrateAsync(Ct);

        (await store.ImportBatchAsync(Batch(), NewEdits(2), Ct)).JobsAdded.ShouldBe(2);
    }

    [Fact]
    public async Task MigrateAsync_ThreeStoresConcurrently_AllSucceed()
    {
        var location = await Backend.NewDatabaseAsync();
        var stores = Enumerable.Range(0, 3).Select(_ => OpenStore(location)).ToArray();

        await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync(Ct))));

        var import = await stores[0].ImportBatchAsync(Batch(), NewEdits(3), Ct);
        foreach (var store in stores)
        {
            (await store.GetEditsAsync(import.Batch.Id, Ct)).Count.ShouldBe(3);
            (await store.GetSchemaVersionAsync(Ct)).ShouldBe(store.LatestSchemaVersion);
        }
    }

    [Fact]
    public async Task GetSchemaVersionAsync_MigratedOrEmpty_ReportsTheLatestOrZero()
    {
        // One number for both backends: their migration lists must not drift apart.
        Store.LatestSchemaVersion.ShouldBe(15);
        (await Store.GetSchemaVersionAsync(Ct)).ShouldBe(Store.LatestSchemaVersion);
        (await OpenStore(await Backend.NewDatabaseAsync()).GetSchemaVersionAsync(Ct)).ShouldBe(0);
    }

    [Fact]
    public async Task MigrateAsync_StoreMigratedByANewerBuild_IsRefusedNamingBothVersions()
    {
        var location = await Backend.NewDatabaseAsync();
        await OpenStore(location).MigrateAsync(Ct);
        await Backend.RecordSchemaVersionAsync(location, Store.LatestSchemaVersion + 1);

        var refused = await Should.ThrowAsync<StoreSchemaTooNewException>(() => OpenStore(location).MigrateAsync(Ct));

        (refused.Found, refused.Known).ShouldBe((Store.LatestSchemaVersion + 1, Store.LatestSchemaVersion));
        refused.Message.ShouldContain($"version {Store.LatestSchemaVersion + 1}, newer than this QwenBatch knows (version {Store.LatestSchemaVersion})");
    }

    [Fact]
    public async Task MigrateAsync_DatabaseOfTheEngineBeforeHangfire_MovesOnWithoutLosingAnythingInFlight()
    {
        var location = await Backend.NewDatabaseAsync();
        await Backend.MigrateToAsync(location, BeforeHangfire, Time);
        var seeded = Now;
        await Backend.SeedLegacyAsync(location, seeded);
        Time.Advance(TimeSpan.FromMinutes(2));

        var store = OpenStore(location);
        await store.MigrateAsync(Ct);

        (await store.GetSchemaVersionAsync(Ct)).ShouldBe(15);
        var batch = (await store.FindBatchAsync(LegacyRows.Batch, Ct)).ShouldNotBeNull();
        var edits = (await store.GetEditsAsync(batch.Id, Ct)).ToDictionary(e => e.Key);

        // Caught submitting: back to the backlog, the submit counted as uncertain, its reservation released, history why.
        var submitting = edits["submitting"];
        submitting.ShouldSatisfyAllConditions(
            e => e.State.ShouldBe(EditState.Pending), e => e.UncertainSubmits.ShouldBe(1), e => e.ReservedUsd.ShouldBe(0m),
            e => e.DueAt.ShouldBe(seeded), e => e.UpdatedAt.ShouldBe(Now), e => e.HangfireJob.ShouldBeNull());
        (await store.GetHistoryAsync(submitting.Id, Ct)).ShouldBe(
            [new EditHistoryEntry(submitting.Id, Now, EditState.Submitting, EditState.Pending, "the engine that was submitting it stopped; the submit may have reached the provider", LegacyRows.Engine)]);

        // At the provider: untouched but for the lease, so the poller takes it when it is due.
        var atProvider = edits["at-provider"];
        atProvider.ShouldSatisfyAllConditions(
            e => e.State.ShouldBe(EditState.AtProvider), e => e.RequestId.ShouldBe("req-7"), e => e.DueAt.ShouldBe(seeded + LegacyRows.ProviderDue),
            e => e.AcceptedSubmits.ShouldBe(1), e => e.UncertainSubmits.ShouldBe(0), e => e.ReservedUsd.ShouldBe(0.02m), e => e.UpdatedAt.ShouldBe(seeded));
        (await store.GetHistoryAsync(atProvider.Id, Ct)).ShouldBeEmpty();
        // Leased in pending: the lease just ends; the reservation it took before its submit is given back (a pending edit
        // holds none now: the feeder reserves).
        var pending = edits["pending"];
        (pending.State, pending.DueAt, pending.UpdatedAt, pending.UncertainSubmits, pending.ReservedUsd).ShouldBe((EditState.Pending, seeded, seeded, 0, 0m));

        // The money and the counters moved with the edits.
        (await store.GetBatchAsync(batch.Id, Ct))!.ReservedUsd.ShouldBe(0.02m);
        var progress = await store.GetProgressAsync(batch.Id, Ct);
        (progress.Count(EditState.Pending), progress.Count(EditState.AtProvider), progress.Count(EditState.Submitting), progress.Total).ShouldBe((2, 1, 0, 3));

        // What Hangfire does now is gone from the schema.
        (await Backend.ColumnsAsync(location, "jobs")).ShouldSatisfyAllConditions(
            c => c.ShouldContain("hangfire_job"), c => c.ShouldNotContain("lease_owner"), c => c.ShouldNotContain("lease_expires_at"));
        (await Backend.ColumnsAsync(location, "servers")).ShouldBeEmpty();
        (await Backend.ColumnsAsync(location, "job_outcomes_by_hour")).ShouldBeEmpty();
        (await Backend.ColumnsAsync(location, "schedules")).ShouldNotContain("next_at");
        (await Backend.ColumnsAsync(location, "schedule_runs")).ShouldBe(["schedule", "occurrence", "batch_name", "error", "recorded_at"], ignoreOrder: true);

        // Schedules keep their definitions and what their occurrences made; a claim never finished keeps its claim time.
        (await store.GetSchedulesAsync(Ct)).ShouldHaveSingleItem().ShouldSatisfyAllConditions(
            s => s.Name.ShouldBe(LegacyRows.Schedule), s => s.Definition.Cron.ShouldBe("0 2 * * *"), s => s.LastBatch.ShouldBe("nightly-done"));
        (await store.GetOccurrencesAsync(LegacyRows.Schedule, Ct)).ShouldBe(
        [
            new ScheduleOutcome(LegacyRows.Schedule, seeded, seeded, null, null),
            new ScheduleOutcome(LegacyRows.Schedule, seeded + LegacyRows.FinishedOccurrence, seeded + LegacyRows.FinishedOccurrence + TimeSpan.FromMinutes(1), "nightly-done", null),
        ]);

        // And the engine on Hangfire carries on with them: the backlog is fed ('queued' is allowed), the poller takes the other.
        var fed = await FeedAsync(store: store);
        fed.Select(e => e.Key).Order().ShouldBe(["pending", "submitting"]);
        (await store.ClaimPollsAsync(new PollClaim(10, TimeSpan.FromSeconds(30)), Ct)).ShouldHaveSingleItem().Id.ShouldBe(atProvider.Id);
        (await store.ImportBatchAsync(Batch(), NewEdits(2), Ct)).Batch.Id.ShouldBeGreaterThan(batch.Id);
        (await store.ImportBatchAsync(Batch(LegacyRows.Batch), [NewEdit("late")], Ct)).JobsAdded.ShouldBe(1);
        (await store.GetEditsAsync(batch.Id, Ct)).Single(e => e.Key == "late").Id.ShouldBeGreaterThan(pending.Id);
    }

    [Fact]
    public async Task MigrateAsync_DatabaseOfTheEngineBeforeHangfireWithNothingInFlight_Migrates()
    {
        var location = await Backend.NewDatabaseAsync();
        await Backend.MigrateToAsync(location, BeforeHangfire, Time);

        await OpenStore(location).MigrateAsync(Ct);

        (await OpenStore(location).GetSchemaVersionAsync(Ct)).ShouldBe(15);
        (await Backend.ColumnsAsync(location, "jobs")).ShouldContain("hangfire_job");
    }
}

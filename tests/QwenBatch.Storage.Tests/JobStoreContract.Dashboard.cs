using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests;

/// <summary>The dashboard's queries: counters that stay equal to the jobs through every kind of write, pages and bulk actions.</summary>
public abstract partial class JobStoreContract
{
    [Fact]
    public async Task GetStateCountsAsync_AfterImportTransitionsCancelRequeueRescueAndDelete_MatchesTheJobs()
    {
        var first = await ImportAndClaimAsync(6, name: "first");
        await PutAsync(first[0], EditState.Succeeded, keepLease: false);
        await PutAsync(first[1], EditState.Failed, keepLease: false);
        await PutAsync(first[2], EditState.AtProvider, keepLease: false);
        await PutAsync(first[3], EditState.Submitting, keepLease: true);
        var second = await ImportAsync(4, "second");
        await AssertCountersMatchAsync();

        await Store.RequestCancelAsync(second.Batch.Id, Ct);
        await AssertCountersMatchAsync();

        await Store.RequeueAsync(second.Batch.Id, [EditState.Cancelled], Ct);
        await Store.RequeueJobsAsync([first[1].Id], Ct);
        await AssertCountersMatchAsync();

        Time.Advance(Lease + TimeSpan.FromMinutes(1));
        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBeGreaterThan(0);
        await AssertCountersMatchAsync();

        await Store.CancelJobsAsync([first[4].Id, first[2].Id], Ct);
        (await Store.DeleteJobsAsync([first[0].Id, first[4].Id], Ct)).ShouldBe(2);
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task GetStateCountsAsync_AfterGroupsReleasesRebudgetsSupersedingAndRevival_MatchesTheJobs()
    {
        // Every kind of state change the first test does not make, each checked on its own.
        var jobs = await ImportAndClaimAsync(6);
        var moved = await Store.TransitionManyAsync(
        [
            new EditTransition(jobs[0] with { State = EditState.Submitting }, [EditState.Pending], Worker, KeepLease: true, Reason: null),
            new EditTransition(jobs[1] with { State = EditState.Held }, [EditState.Pending], Worker, KeepLease: false, Reason: "over budget"),
            new EditTransition(jobs[2] with { State = EditState.Held }, [EditState.Pending], Worker, KeepLease: false, Reason: "over budget"),
            new EditTransition(jobs[3] with { State = EditState.AtProvider, CostUsd = 0.02m }, [EditState.Pending], Worker, KeepLease: true, Reason: null),
            new EditTransition(jobs[4] with { Polls = 1 }, [EditState.Pending], Worker, KeepLease: true, Reason: null),
        ], Ct);
        moved.ShouldBe([true, true, true, true, true]);
        await AssertCountersMatchAsync();

        // A submit caught by a stop goes back to pending.
        (await Store.ReleaseLeasesAsync(Worker, Ct)).ShouldBeGreaterThan(0);
        await AssertCountersMatchAsync();

        // A resumed import with a budget gives held jobs another look.
        await Store.ImportBatchAsync(Batch() with { BudgetUsd = 100m }, NewJobs(6), Ct);
        await AssertCountersMatchAsync();

        // Held again, then released within the account's daily budget.
        var again = await ClaimAsync(limit: 2, batchId: jobs[0].BatchId);
        foreach (var job in again)
        {
            await PutAsync(job, EditState.Held, keepLease: false);
        }

        await AssertCountersMatchAsync();
        (await Store.ReleaseHeldWithinDailyBudgetAsync(new DailyBudgetRelease(Provider, 100m, 0.02m), Ct)).ShouldBe(2);
        await AssertCountersMatchAsync();

        // A changed row supersedes its pending job (cancelled) with a new one; the old content back revives it.
        var changed = NewJobs(6);
        changed[5] = NewEdit(changed[5].Key, "h2");
        (await Store.ImportBatchAsync(Batch(), changed, Ct)).JobsReplaced.ShouldBe(1);
        await AssertCountersMatchAsync();
        await Store.ImportBatchAsync(Batch(), NewJobs(6), Ct);
        await AssertCountersMatchAsync();
        (await Store.GetJobsAsync(jobs[0].BatchId, Ct)).Count(j => j.State == EditState.Cancelled).ShouldBe(1);
    }

    [Fact]
    public async Task GetProgressAsync_CostSettled_CountsFromCountersAndSpendFromTheBatch()
    {
        var jobs = await ImportAndClaimAsync(3);
        await MoveAsync(jobs[0], jobs[0] with { State = EditState.Succeeded, CostUsd = 0.04m });
        await MoveAsync(jobs[1], jobs[1] with { State = EditState.Failed, CostUsd = 0.02m });

        var progress = await Store.GetProgressAsync(jobs[0].BatchId, Ct);

        progress.Count(EditState.Succeeded).ShouldBe(1);
        progress.Count(EditState.Failed).ShouldBe(1);
        progress.Count(EditState.Pending).ShouldBe(1);
        progress.Total.ShouldBe(3);
        progress.SpentUsd.ShouldBe(0.06m);
        (await Store.GetSpendAsync(DateOnly.FromDateTime(Now.UtcDateTime), Ct)).ShouldBe([new ProviderSpend(Provider, 0.06m)]);
        (await Store.GetSpendAsync(DateOnly.FromDateTime(Now.UtcDateTime).AddDays(-1), Ct)).ShouldBeEmpty();
        (await Store.GetSpendAsync(null, Ct)).ShouldBe([new ProviderSpend(Provider, 0.06m)]);
    }

    [Fact]
    public async Task QueryJobsAsync_KeysetPages_ListEveryJobOnceNewestFirst()
    {
        var import = await ImportAsync(45);
        await ImportAsync(3, "other");
        var seen = new List<long>();
        long? before = null;
        while (true)
        {
            var page = await Store.QueryJobsAsync(new EditQuery(EditState.Pending, import.Batch.Id, BeforeId: before), Ct);
            if (page.Count == 0)
            {
                break;
            }

            page.Count.ShouldBeLessThanOrEqualTo(20);
            seen.AddRange(page.Select(j => j.Id));
            before = page[^1].Id;
        }

        seen.Count.ShouldBe(45);
        seen.ShouldBe(seen.OrderByDescending(id => id).Distinct().ToList());
    }

    [Fact]
    public async Task QueryJobsAsync_TextAndProviderFilters_MatchKeyPromptOrId()
    {
        var import = await ImportAsync(12);
        var byKey = await Store.QueryJobsAsync(new EditQuery(Text: "row-0011"), Ct);
        var byPrompt = await Store.QueryJobsAsync(new EditQuery(Text: "PUT ROW-0007 on"), Ct);
        var wildcard = await Store.QueryJobsAsync(new EditQuery(Text: "row_%"), Ct);
        var otherProvider = await Store.QueryJobsAsync(new EditQuery(Provider: "wavespeed"), Ct);
        var jobs = await Store.GetJobsAsync(import.Batch.Id, Ct);
        var byId = await Store.QueryJobsAsync(new EditQuery(Text: jobs[2].Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), Ct);

        byKey.Select(j => j.Key).ShouldBe(["row-0011"]);
        byPrompt.Select(j => j.Key).ShouldBe(["row-0007"]);
        wildcard.ShouldBeEmpty();
        otherProvider.ShouldBeEmpty();
        byId.Select(j => j.Id).ShouldContain(jobs[2].Id);
    }

    [Fact]
    public async Task CancelJobsAsync_Selection_CancelsWaitingFlagsAtProviderAndLeavesTheRest()
    {
        var jobs = await ImportAndClaimAsync(4);
        var atProvider = await PutAsync(jobs[0], EditState.AtProvider, keepLease: false);
        var waiting = await PutAsync(jobs[1], EditState.Pending, keepLease: false);
        var done = await PutAsync(jobs[2], EditState.Succeeded, keepLease: false);

        var count = await Store.CancelJobsAsync([atProvider.Id, waiting.Id, done.Id], Ct);

        count.ShouldBe(2);
        (await GetAsync(waiting.Id)).State.ShouldBe(EditState.Cancelled);
        (await GetAsync(atProvider.Id)).CancelRequested.ShouldBeTrue();
        (await GetAsync(atProvider.Id)).State.ShouldBe(EditState.AtProvider);
        (await GetAsync(done.Id)).State.ShouldBe(EditState.Succeeded);
        (await GetAsync(jobs[3].Id)).State.ShouldBe(EditState.Pending);
        (await Store.GetHistoryAsync(waiting.Id, Ct))[^1].Reason.ShouldBe("cancelled by an operator");
    }

    [Fact]
    public async Task RequeueJobsAsync_FailedAndSucceeded_RequeuesOnlyTheFailed()
    {
        var jobs = await ImportAndClaimAsync(2);
        var failed = await PutAsync(jobs[0] with { Error = "provider failed", Attempt = 3 }, EditState.Failed, keepLease: false);
        var done = await PutAsync(jobs[1], EditState.Succeeded, keepLease: false);

        (await Store.RequeueJobsAsync([failed.Id, done.Id], Ct)).ShouldBe(1);

        var again = await GetAsync(failed.Id);
        again.State.ShouldBe(EditState.Pending);
        again.Error.ShouldBeNull();
        again.Attempt.ShouldBe(0);
        (await GetAsync(done.Id)).State.ShouldBe(EditState.Succeeded);
    }

    [Fact]
    public async Task DeleteJobsAsync_LeasedOrRunning_AreKept()
    {
        var jobs = await ImportAndClaimAsync(2);
        var done = await PutAsync(jobs[0], EditState.Succeeded, keepLease: false);

        (await Store.DeleteJobsAsync([done.Id, jobs[1].Id], Ct)).ShouldBe(1);

        (await Store.GetJobAsync(done.Id, Ct)).ShouldBeNull();
        (await GetAsync(jobs[1].Id)).State.ShouldBe(EditState.Pending);
    }

    [Fact]
    public async Task GetSchemaVersionAsync_MigratedOrEmpty_ReportsTheLatestOrZero()
    {
        // One number for both backends: their migration lists must not drift apart.
        Store.LatestSchemaVersion.ShouldBe(12);
        (await Store.GetSchemaVersionAsync(Ct)).ShouldBe(Store.LatestSchemaVersion);
        (await OpenStore(await NewDatabaseAsync()).GetSchemaVersionAsync(Ct)).ShouldBe(0);
    }

    [Fact]
    public async Task MigrateAsync_StoreMigratedByANewerBuild_IsRefusedNamingBothVersions()
    {
        var location = await NewDatabaseAsync();
        await OpenStore(location).MigrateAsync(Ct);
        await RecordSchemaVersionAsync(location, Store.LatestSchemaVersion + 1);

        var refused = await Should.ThrowAsync<StoreSchemaTooNewException>(() => OpenStore(location).MigrateAsync(Ct));

        (refused.Found, refused.Known).ShouldBe((Store.LatestSchemaVersion + 1, Store.LatestSchemaVersion));
        refused.Message.ShouldContain($"version {Store.LatestSchemaVersion + 1}, newer than this QwenBatch knows (version {Store.LatestSchemaVersion})");
    }

    [Fact]
    public async Task GetRateLimitsAsync_PausedAccount_IsListed()
    {
        await Store.PauseAccountAsync("wavespeed", Now.AddSeconds(30), Ct);

        var limits = await Store.GetRateLimitsAsync(Ct);

        limits.Select(l => (l.Account, l.PausedUntil)).ShouldBe([("wavespeed", (DateTimeOffset?)Now.AddSeconds(30))]);
    }

    [Fact]
    public async Task GetOutcomesAsync_JobsSucceedAndFailOverTwoHours_CountsPerHourAndKeepsThemAfterARequeue()
    {
        Time.Advance(TimeSpan.FromMinutes(10));
        var firstHour = new DateTimeOffset(Now.Year, Now.Month, Now.Day, Now.Hour, 0, 0, TimeSpan.Zero);
        var jobs = await ImportAndClaimAsync(4);
        await MoveAsync(jobs[0], jobs[0] with { State = EditState.Succeeded, FinishedAt = Now });
        var failed = await PutAsync(jobs[1], EditState.Failed, keepLease: false);
        await PutAsync(jobs[3], EditState.AtProvider, keepLease: false);
        Time.Advance(TimeSpan.FromHours(1));
        await MoveAsync(jobs[2], jobs[2] with { State = EditState.Succeeded, FinishedAt = Now });
        await Store.RequeueJobsAsync([failed.Id], Ct);

        var all = await Store.GetOutcomesAsync(firstHour.AddHours(-5), Ct);
        var lastHourOnly = await Store.GetOutcomesAsync(Now, Ct);

        all.ShouldBe(
        [
            new HourlyOutcome(firstHour, EditState.Failed, 1),
            new HourlyOutcome(firstHour, EditState.Succeeded, 1),
            new HourlyOutcome(firstHour.AddHours(1), EditState.Succeeded, 1),
        ]);
        lastHourOnly.ShouldBe([new HourlyOutcome(firstHour.AddHours(1), EditState.Succeeded, 1)]);
    }

    [Fact]
    public async Task GetServerLoadAsync_LeasesRescuesAndACleanRelease_ShowsJobsInHandAndWhatWasRescuedFromWhom()
    {
        var lost = await ImportAndClaimAsync(3, Worker);
        var other = await ImportAsync(2, "other");
        var kept = await ClaimAsync(OtherWorker, batchId: other.Batch.Id, lease: TimeSpan.FromHours(1));
        var before = await Store.GetServerLoadAsync(Ct);
        Time.Advance(Lease + TimeSpan.FromMinutes(1));
        var rescuedAt = Now;

        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(3);
        var after = await Store.GetServerLoadAsync(Ct);
        var rescues = await Store.GetRescuesAsync(null, 10, Ct);
        await Store.ReleaseLeasesAsync(OtherWorker, Ct);
        var released = await Store.GetServerLoadAsync(Ct);

        before.Select(s => (s.ServerId, string.Join(",", s.JobsInHand), s.Rescued)).ShouldBe(
            [(Worker, string.Join(",", lost.Select(j => j.Id)), 0L), (OtherWorker, string.Join(",", kept.Select(j => j.Id).Order()), 0L)]);
        after.Select(s => (s.ServerId, s.JobsInHand.Count, s.Rescued, s.LastRescueAt)).ShouldBe(
            [(Worker, 0, 3L, (DateTimeOffset?)rescuedAt), (OtherWorker, 2, 0L, null)]);
        rescues.Select(r => r.JobId).Order().ShouldBe(lost.Select(j => j.Id).Order());
        rescues.ShouldAllBe(r => r.ServerId == Worker && r.At == rescuedAt);
        (await Store.GetRescuesAsync(Worker, 2, Ct)).Count.ShouldBe(2);
        (await Store.GetRescuesAsync(OtherWorker, 10, Ct)).ShouldBeEmpty();
        released.Select(s => s.ServerId).ShouldBe([Worker], "a clean release is not a rescue");
    }

    /// <summary>The counters summed per state equal a count over the jobs themselves.</summary>
    private async Task AssertCountersMatchAsync()
    {
        var counters = await Store.GetStateCountsAsync(Ct);
        var actual = new List<BatchStateCount>();
        foreach (var batch in await Store.GetBatchesAsync(Ct))
        {
            actual.AddRange((await Store.GetJobsAsync(batch.Id, Ct)).GroupBy(j => j.State).Select(g => new BatchStateCount(batch.Id, g.Key, g.Count())));
        }

        counters.OrderBy(c => c.BatchId).ThenBy(c => c.State).ShouldBe(actual.OrderBy(c => c.BatchId).ThenBy(c => c.State));
    }
}

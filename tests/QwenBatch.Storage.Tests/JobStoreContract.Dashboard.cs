using QwenBatch.Jobs;

namespace QwenBatch.Storage.Tests;

/// <summary>The dashboard's queries: counters that stay equal to the jobs through every kind of write, pages and bulk actions.</summary>
public abstract partial class JobStoreContract
{
    [Fact]
    public async Task GetStateCountsAsync_AfterImportTransitionsCancelRequeueRescueAndDelete_MatchesTheJobs()
    {
        var first = await ImportAndClaimAsync(6, name: "first");
        await PutAsync(first[0], JobState.Succeeded, keepLease: false);
        await PutAsync(first[1], JobState.Failed, keepLease: false);
        await PutAsync(first[2], JobState.AtProvider, keepLease: false);
        await PutAsync(first[3], JobState.Submitting, keepLease: true);
        var second = await ImportAsync(4, "second");
        await AssertCountersMatchAsync();

        await Store.RequestCancelAsync(second.Batch.Id, Ct);
        await AssertCountersMatchAsync();

        await Store.RequeueAsync(second.Batch.Id, [JobState.Cancelled], Ct);
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
    public async Task GetProgressAsync_CostSettled_CountsFromCountersAndSpendFromTheBatch()
    {
        var jobs = await ImportAndClaimAsync(3);
        await MoveAsync(jobs[0], jobs[0] with { State = JobState.Succeeded, CostUsd = 0.04m });
        await MoveAsync(jobs[1], jobs[1] with { State = JobState.Failed, CostUsd = 0.02m });

        var progress = await Store.GetProgressAsync(jobs[0].BatchId, Ct);

        progress.Count(JobState.Succeeded).ShouldBe(1);
        progress.Count(JobState.Failed).ShouldBe(1);
        progress.Count(JobState.Pending).ShouldBe(1);
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
            var page = await Store.QueryJobsAsync(new JobQuery(JobState.Pending, import.Batch.Id, BeforeId: before), Ct);
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
        var byKey = await Store.QueryJobsAsync(new JobQuery(Text: "row-0011"), Ct);
        var byPrompt = await Store.QueryJobsAsync(new JobQuery(Text: "PUT ROW-0007 on"), Ct);
        var wildcard = await Store.QueryJobsAsync(new JobQuery(Text: "row_%"), Ct);
        var otherProvider = await Store.QueryJobsAsync(new JobQuery(Provider: "wavespeed"), Ct);
        var jobs = await Store.GetJobsAsync(import.Batch.Id, Ct);
        var byId = await Store.QueryJobsAsync(new JobQuery(Text: jobs[2].Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), Ct);

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
        var atProvider = await PutAsync(jobs[0], JobState.AtProvider, keepLease: false);
        var waiting = await PutAsync(jobs[1], JobState.Pending, keepLease: false);
        var done = await PutAsync(jobs[2], JobState.Succeeded, keepLease: false);

        var count = await Store.CancelJobsAsync([atProvider.Id, waiting.Id, done.Id], Ct);

        count.ShouldBe(2);
        (await GetAsync(waiting.Id)).State.ShouldBe(JobState.Cancelled);
        (await GetAsync(atProvider.Id)).CancelRequested.ShouldBeTrue();
        (await GetAsync(atProvider.Id)).State.ShouldBe(JobState.AtProvider);
        (await GetAsync(done.Id)).State.ShouldBe(JobState.Succeeded);
        (await GetAsync(jobs[3].Id)).State.ShouldBe(JobState.Pending);
        (await Store.GetHistoryAsync(waiting.Id, Ct))[^1].Reason.ShouldBe("cancelled by an operator");
    }

    [Fact]
    public async Task RequeueJobsAsync_FailedAndSucceeded_RequeuesOnlyTheFailed()
    {
        var jobs = await ImportAndClaimAsync(2);
        var failed = await PutAsync(jobs[0] with { Error = "provider failed", Attempt = 3 }, JobState.Failed, keepLease: false);
        var done = await PutAsync(jobs[1], JobState.Succeeded, keepLease: false);

        (await Store.RequeueJobsAsync([failed.Id, done.Id], Ct)).ShouldBe(1);

        var again = await GetAsync(failed.Id);
        again.State.ShouldBe(JobState.Pending);
        again.Error.ShouldBeNull();
        again.Attempt.ShouldBe(0);
        (await GetAsync(done.Id)).State.ShouldBe(JobState.Succeeded);
    }

    [Fact]
    public async Task DeleteJobsAsync_LeasedOrRunning_AreKept()
    {
        var jobs = await ImportAndClaimAsync(2);
        var done = await PutAsync(jobs[0], JobState.Succeeded, keepLease: false);

        (await Store.DeleteJobsAsync([done.Id, jobs[1].Id], Ct)).ShouldBe(1);

        (await Store.GetJobAsync(done.Id, Ct)).ShouldBeNull();
        (await GetAsync(jobs[1].Id)).State.ShouldBe(JobState.Pending);
    }

    [Fact]
    public async Task GetSchemaVersionAsync_MigratedOrEmpty_ReportsTheLatestOrZero()
    {
        (await Store.GetSchemaVersionAsync(Ct)).ShouldBe(5);
        (await OpenStore(await NewDatabaseAsync()).GetSchemaVersionAsync(Ct)).ShouldBe(0);
    }

    [Fact]
    public async Task GetRateLimitsAsync_PausedAccount_IsListed()
    {
        await Store.PauseAccountAsync("wavespeed", Now.AddSeconds(30), Ct);

        var limits = await Store.GetRateLimitsAsync(Ct);

        limits.Select(l => (l.Account, l.PausedUntil)).ShouldBe([("wavespeed", (DateTimeOffset?)Now.AddSeconds(30))]);
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

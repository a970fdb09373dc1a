using System.Globalization;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Reports;

/// <summary>
/// What every backend's <see cref="IReportReads"/> must do: counters that stay equal to the edits through every kind of
/// write, spend per day, keyset pages with filters.
/// </summary>
public abstract class ReportReadsContract : StoreContract
{
    [Fact]
    public async Task GetStateCountsAsync_AfterImportFeedTransitionsCancelRequeueAndForget_MatchesTheEdits()
    {
        var first = await QueueAsync(6, "first");
        await PutAsync(first[0] with { ReservedUsd = 0m }, EditState.Succeeded);
        await PutAsync(first[1] with { ReservedUsd = 0m }, EditState.Failed);
        await PutAsync(first[2], EditState.AtProvider);
        await PutAsync(first[3], EditState.Submitting);
        var second = await ImportAsync(4, "second");
        await AssertCountersMatchAsync();

        await Store.RequestCancelAsync(second.Batch.Id, Ct);
        await AssertCountersMatchAsync();

        await Store.RequeueAsync(second.Batch.Id, [EditState.Cancelled], Ct);
        await Store.RequeueEditsAsync([first[1].Id], Ct);
        await AssertCountersMatchAsync();

        await Store.CancelEditsAsync([first[4].Id, first[2].Id], Ct);
        await AssertCountersMatchAsync();

        (await Store.ForgetJobsAsync(null, Server, Ct)).ShouldBeGreaterThan(0);
        await AssertCountersMatchAsync();
        await AssertReservationsMatchAsync();
    }

    [Fact]
    public async Task GetStateCountsAsync_AfterHoldsReleasesRebudgetsSupersedingAndRevival_MatchesTheEdits()
    {
        // Every kind of state change the first test does not make, each checked on its own.
        var edits = await ImportEditsAsync(6, budget: 0.08m);
        (await FeedAsync()).Count.ShouldBe(2);
        await AssertCountersMatchAsync();

        // A resumed import with a budget gives held edits another look.
        await Store.ImportBatchAsync(Batch(budget: 100m), NewEdits(6), Ct);
        await AssertCountersMatchAsync();

        // Held again (the daily budget), then released within it.
        (await FeedAsync(policy: Policy(dailyBudget: 0.12m))).Count.ShouldBe(1);
        await AssertCountersMatchAsync();
        Time.Advance(TimeSpan.FromDays(1));
        (await Store.ReleaseHeldWithinDailyBudgetAsync(new DailyBudgetRelease(Provider, 100m, Price), Ct)).ShouldBe(3);
        await AssertCountersMatchAsync();

        // A changed row supersedes its pending edit (cancelled) with a new one; the old content back revives it.
        var changed = NewEdits(6);
        changed[5] = NewEdit(changed[5].Key, "h2");
        (await Store.ImportBatchAsync(Batch(), changed, Ct)).JobsReplaced.ShouldBe(1);
        await AssertCountersMatchAsync();
        await Store.ImportBatchAsync(Batch(), NewEdits(6), Ct);
        await AssertCountersMatchAsync();
        (await Store.GetEditsAsync(edits[0].BatchId, Ct)).Count(e => e.State == EditState.Cancelled).ShouldBe(1);

        // A pending edit flagged for cancel is cancelled by the feeder.
        var flagged = await PutAsync(await GetAsync(edits[0].Id), EditState.Submitting);
        await Store.RequestCancelAsync(flagged.BatchId, Ct);
        (await MoveAsync(flagged, flagged with { State = EditState.Pending, ReservedUsd = 0m })).ShouldBeTrue();
        await FeedAsync();
        await AssertCountersMatchAsync();
        await AssertReservationsMatchAsync();
    }

    [Fact]
    public async Task GetSpendAsync_CostSettledOnTwoDays_PerProviderPerUtcDayAndInAll()
    {
        var edits = await ImportEditsAsync(3);
        await MoveAsync(edits[0], edits[0] with { State = EditState.Succeeded, CostUsd = 0.04m });
        await MoveAsync(edits[1], edits[1] with { State = EditState.Failed, CostUsd = 0.02m });
        var today = DateOnly.FromDateTime(Now.UtcDateTime);
        Time.Advance(TimeSpan.FromDays(1));
        await MoveAsync(edits[2], edits[2] with { State = EditState.Downloading, CostUsd = 0.06m });

        (await Store.GetSpendAsync(today, Ct)).ShouldBe([new ProviderSpend(Provider, 0.06m)]);
        (await Store.GetSpendAsync(today.AddDays(1), Ct)).ShouldBe([new ProviderSpend(Provider, 0.06m)]);
        (await Store.GetSpendAsync(today.AddDays(-1), Ct)).ShouldBeEmpty();
        (await Store.GetSpendAsync(null, Ct)).ShouldBe([new ProviderSpend(Provider, 0.12m)]);
        (await Store.GetProgressAsync(edits[0].BatchId, Ct)).SpentUsd.ShouldBe(0.12m);
    }

    [Fact]
    public async Task QueryEditsAsync_KeysetPages_ListEveryEditOnceNewestFirst()
    {
        var import = await ImportAsync(45);
        await ImportAsync(3, "other");
        var seen = new List<long>();
        long? before = null;
        while (await Store.QueryEditsAsync(new EditQuery(EditState.Pending, import.Batch.Id, BeforeId: before), Ct) is { Count: > 0 } page)
        {
            page.Count.ShouldBeLessThanOrEqualTo(20);
            seen.AddRange(page.Select(e => e.Id));
            before = page[^1].Id;
        }

        seen.Count.ShouldBe(45);
        seen.ShouldBe(seen.OrderByDescending(id => id).Distinct().ToList());
        (await Store.GetEditsAsync(import.Batch.Id, Ct)).Select(e => e.Id).Order().ShouldBe(seen.Order());
    }

    [Fact]
    public async Task QueryEditsAsync_StateFilter_ListsOnlyThatState()
    {
        var edits = await QueueAsync(4);
        await PutAsync(edits[1], EditState.AtProvider);

        var queued = await Store.QueryEditsAsync(new EditQuery(EditState.Queued), Ct);

        queued.Select(e => e.Id).ShouldBe([edits[3].Id, edits[2].Id, edits[0].Id]);
    }

    [Fact]
    public async Task QueryEditsAsync_TextAndProviderFilters_MatchKeyPromptOrId()
    {
        var import = await ImportAsync(12);
        var byKey = await Store.QueryEditsAsync(new EditQuery(Text: "row-0011"), Ct);
        var byPrompt = await Store.QueryEditsAsync(new EditQuery(Text: "PUT ROW-0007 on"), Ct);
        var wildcard = await Store.QueryEditsAsync(new EditQuery(Text: "row_%"), Ct);
        var otherProvider = await Store.QueryEditsAsync(new EditQuery(Provider: OtherProvider), Ct);
        var edits = await EditsAsync(import.Batch.Id);
        var byId = await Store.QueryEditsAsync(new EditQuery(Text: edits[2].Id.ToString(CultureInfo.InvariantCulture)), Ct);

        byKey.Select(e => e.Key).ShouldBe(["row-0011"]);
        byPrompt.Select(e => e.Key).ShouldBe(["row-0007"]);
        wildcard.ShouldBeEmpty();
        otherProvider.ShouldBeEmpty();
        byId.Select(e => e.Id).ShouldContain(edits[2].Id);
    }
}

using System.Collections.Concurrent;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Edits;

/// <summary>The poller's claim on edits at the provider.</summary>
public abstract partial class EditStoreContract
{
    private static readonly TimeSpan PollLease = TimeSpan.FromSeconds(30);

    private static readonly int[] DueSeconds = [3, 1, 2, 60];

    /// <summary>Imports <paramref name="count"/> edits and puts them at the provider, due at the given offsets from now.</summary>
    private async Task<List<EditRecord>> AtProviderAsync(int count, Func<int, TimeSpan>? due = null, string name = "spring-catalog")
    {
        var edits = await ImportEditsAsync(count, name);
        var start = Now;
        var moved = await Store.TransitionManyAsync(
            [.. edits.Select((e, i) => new EditTransition(e with { State = EditState.AtProvider, RequestId = $"req-{e.Id}", DueAt = start + (due?.Invoke(i) ?? TimeSpan.Zero) }, [EditState.Pending], Server, null))], Ct);
        moved.ShouldAllBe(m => m);
        return await EditsAsync(edits[0].BatchId);
    }

    [Fact]
    public async Task ClaimPollsAsync_DueEdits_OldestDueFirstWithinTheLimitAsTheyWereBefore()
    {
        var edits = await AtProviderAsync(4, i => TimeSpan.FromSeconds(DueSeconds[i]));
        Time.Advance(TimeSpan.FromSeconds(10));

        var claimed = await Store.ClaimPollsAsync(new PollClaim(2, PollLease), Ct);

        claimed.Select(e => e.Id).ShouldBe([edits[1].Id, edits[2].Id]);
        ShouldBeUnchanged(claimed[0], edits[1]);
        (await GetAsync(edits[1].Id)).ShouldSatisfyAllConditions(e => e.DueAt.ShouldBe(Now + PollLease), e => e.UpdatedAt.ShouldBe(edits[1].UpdatedAt));
        (await Store.ClaimPollsAsync(new PollClaim(10, PollLease), Ct)).Select(e => e.Id).ShouldBe([edits[0].Id]);
    }

    [Fact]
    public async Task ClaimPollsAsync_ClaimedEdit_NotDueToAnyoneElseUntilTheLeasePassed()
    {
        var edit = (await AtProviderAsync(1))[0];
        (await Store.ClaimPollsAsync(new PollClaim(10, PollLease), Ct)).ShouldHaveSingleItem();

        var whileClaimed = await OpenStore().ClaimPollsAsync(new PollClaim(10, PollLease), Ct);
        Time.Advance(PollLease);
        var afterLease = await OpenStore().ClaimPollsAsync(new PollClaim(10, PollLease), Ct);

        whileClaimed.ShouldBeEmpty();
        afterLease.ShouldHaveSingleItem().Id.ShouldBe(edit.Id);
    }

    [Fact]
    public async Task ClaimPollsAsync_EditsInOtherStates_AreNeverClaimed()
    {
        var edits = await ImportEditsAsync(Enum.GetValues<EditState>().Length);
        foreach (var (edit, state) in edits.Zip(Enum.GetValues<EditState>()))
        {
            await PutAsync(edit, state);
        }

        var claimed = await Store.ClaimPollsAsync(new PollClaim(100, PollLease), Ct);

        claimed.ShouldHaveSingleItem().State.ShouldBe(EditState.AtProvider);
    }

    [Fact]
    public async Task ClaimPollsAsync_WithBatchId_ClaimsOnlyThatBatch()
    {
        var spring = await AtProviderAsync(2, name: "spring");
        var autumn = await AtProviderAsync(3, name: "autumn");

        var claimed = await Store.ClaimPollsAsync(new PollClaim(10, PollLease, autumn[0].BatchId), Ct);

        claimed.Select(e => e.Id).ShouldBe(autumn.Select(e => e.Id));
        (await Store.ClaimPollsAsync(new PollClaim(10, PollLease), Ct)).Select(e => e.Id).ShouldBe(spring.Select(e => e.Id));
    }

    [Fact]
    public async Task ClaimPollsAsync_CancelFlaggedEditClaimedEarlier_IsDueAgainAtOnce()
    {
        var edit = (await AtProviderAsync(1))[0];
        (await Store.ClaimPollsAsync(new PollClaim(10, PollLease), Ct)).ShouldHaveSingleItem();

        await Store.RequestCancelAsync(edit.BatchId, Ct);

        (await Store.ClaimPollsAsync(new PollClaim(10, PollLease), Ct)).ShouldHaveSingleItem().CancelRequested.ShouldBeTrue();
    }

    [Fact]
    public async Task ClaimPollsAsync_TwoPollersAtOnce_NeverTakeTheSameEdit()
    {
        var edits = await AtProviderAsync(120);
        var claims = new ConcurrentBag<(int Poller, long Id)>();
        var pollers = new[] { OpenStore(), OpenStore() };

        await Task.WhenAll(pollers.Select((store, poller) => Task.Run(async () =>
        {
            while (await store.ClaimPollsAsync(new PollClaim(7, PollLease), Ct) is { Count: > 0 } claimed)
            {
                claimed.Count.ShouldBeLessThanOrEqualTo(7);
                foreach (var edit in claimed)
                {
                    claims.Add((poller, edit.Id));
                }
            }
        })));

        claims.Select(c => c.Id).Order().ShouldBe(edits.Select(e => e.Id));
    }
}

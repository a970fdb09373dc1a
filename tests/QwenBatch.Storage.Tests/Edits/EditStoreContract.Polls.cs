using System.Collections.Concurrent;
using QwenBatch.Batches;
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

    [Fact]
    public async Task PullWaveForwardAsync_ParkedEditsOfTheWave_DueWithinTheLessonOfTheirSubmitTheRestUntouched()
    {
        // Submitted one second apart, parked 30 s after their submits.
        var edits = await AtProviderAsync(6, i => TimeSpan.FromSeconds(i + 30));
        for (var i = 0; i < edits.Count; i++)
        {
            edits[i] = await PutSubmittedAsync(edits[i], Now + TimeSpan.FromSeconds(i));
        }

        var polled = edits[1] with { Polls = 1 };
        (await MoveAsync(edits[1], polled)).ShouldBeTrue();
        var soon = edits[2] with { DueAt = edits[2].SubmittedAt!.Value + TimeSpan.FromSeconds(7) };
        (await MoveAsync(edits[2], soon)).ShouldBeTrue();
        (await MoveAsync(edits[3], edits[3] with { State = EditState.Downloading })).ShouldBeTrue();
        var other = (await AtProviderAsync(1, _ => TimeSpan.FromSeconds(30), name: "autumn"))[0];
        var before = await EditsAsync(edits[0].BatchId);
        var history = (await Store.GetHistoryAsync(edits[0].Id, Ct)).Count;

        var earliest = await Store.PullWaveForwardAsync(Pull(edits[0]), Ct);

        var after = await EditsAsync(edits[0].BatchId);
        earliest.ShouldBe(edits[0].SubmittedAt!.Value + TimeSpan.FromSeconds(6));
        after[0].DueAt.ShouldBe(edits[0].SubmittedAt!.Value + TimeSpan.FromSeconds(6));
        after[4].DueAt.ShouldBe(edits[4].SubmittedAt!.Value + TimeSpan.FromSeconds(6));
        after[5].DueAt.ShouldBe(edits[5].SubmittedAt!.Value + TimeSpan.FromSeconds(6));
        after[0].ShouldSatisfyAllConditions(e => e.UpdatedAt.ShouldBe(before[0].UpdatedAt), e => e.State.ShouldBe(EditState.AtProvider), e => e.Polls.ShouldBe(0));
        after[1].DueAt.ShouldBe(before[1].DueAt, "already polled: on its own schedule");
        after[2].DueAt.ShouldBe(before[2].DueAt, "due within the jitter of the lesson already");
        after[3].DueAt.ShouldBe(before[3].DueAt, "no longer at the provider");
        (await GetAsync(other.Id)).DueAt.ShouldBe(other.DueAt, "another batch's wave");
        (await Store.GetHistoryAsync(edits[0].Id, Ct)).Count.ShouldBe(history, "a due time is no state: nothing in the history");
    }

    [Fact]
    public async Task PullWaveForwardAsync_OtherKindOrProviderOrCancelFlagged_Untouched()
    {
        var edits = await AtProviderAsync(1, _ => TimeSpan.FromSeconds(30));
        var edit = await PutSubmittedAsync(edits[0], Now);

        (await Store.PullWaveForwardAsync(Pull(edit) with { N = 1 }, Ct)).ShouldBeNull();
        (await Store.PullWaveForwardAsync(Pull(edit) with { Size = "512*512" }, Ct)).ShouldBeNull();
        (await Store.PullWaveForwardAsync(Pull(edit) with { Size = null }, Ct)).ShouldBeNull();
        (await Store.PullWaveForwardAsync(Pull(edit) with { Provider = OtherProvider }, Ct)).ShouldBeNull();
        await Store.RequestCancelAsync(edit.BatchId, Ct);
        var flagged = await GetAsync(edit.Id);
        (await Store.PullWaveForwardAsync(Pull(edit), Ct)).ShouldBeNull();

        (await GetAsync(edit.Id)).DueAt.ShouldBe(flagged.DueAt);
    }

    [Fact]
    public async Task PullWaveForwardAsync_DefaultSize_MatchesEditsWithNoSize()
    {
        var import = await Store.ImportBatchAsync(Batch(), [new NewEdit("plain", "h1", Provider, new EditSpec { Prompt = "p", Images = ["/images/p.png"] })], Ct);
        var edit = (await EditsAsync(import.Batch.Id))[0];
        var parked = edit with { State = EditState.AtProvider, RequestId = "req-plain", SubmittedAt = Now, DueAt = Now + TimeSpan.FromSeconds(30) };
        (await MoveAsync(edit, parked)).ShouldBeTrue();

        var earliest = await Store.PullWaveForwardAsync(new WavePull(edit.BatchId, Provider, 1, null, TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(7.5)), Ct);

        earliest.ShouldBe(Now + TimeSpan.FromSeconds(6));
        (await GetAsync(edit.Id)).DueAt.ShouldBe(Now + TimeSpan.FromSeconds(6));
    }

    [Fact]
    public async Task PullWaveForwardAsync_EditClaimedForItsFirstPoll_NotMadeDueAgainWhileItIsPolled()
    {
        var edits = await AtProviderAsync(2, i => TimeSpan.FromSeconds(i == 0 ? 0 : 30));
        var claimed = await PutSubmittedAsync(edits[0], Now);
        var parked = await PutSubmittedAsync(edits[1], Now);
        var lease = TimeSpan.FromMinutes(2);
        (await Store.ClaimPollsAsync(new PollClaim(10, lease), Ct)).ShouldHaveSingleItem().Id.ShouldBe(claimed.Id);
        var whileClaimed = await GetAsync(claimed.Id);

        var earliest = await Store.PullWaveForwardAsync(Pull(parked) with { DueBefore = Now + (lease / 2) }, Ct);

        earliest.ShouldBe(Now + TimeSpan.FromSeconds(6));
        (await GetAsync(claimed.Id)).DueAt.ShouldBe(whileClaimed.DueAt);
    }

    /// <summary>The lesson of 6 s tasks for the wave of <paramref name="edit"/> (its n and size: 2 × 1024*1024).</summary>
    private static WavePull Pull(EditRecord edit) =>
        new(edit.BatchId, edit.Provider, edit.Spec.N, edit.Spec.Size, TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(7.5));

    /// <summary>Sets when the edit's task was accepted, keeping its due time.</summary>
    private async Task<EditRecord> PutSubmittedAsync(EditRecord edit, DateTimeOffset submittedAt)
    {
        (await MoveAsync(edit, edit with { SubmittedAt = submittedAt })).ShouldBeTrue();
        return await GetAsync(edit.Id);
    }
}

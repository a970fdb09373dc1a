using QwenBatch.Edits;
using QwenBatch.Outputs;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    [Fact]
    public async Task TransitionAsync_ExpectedStateAndOwner_WritesEveryMutableField()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var next = job with
        {
            State = EditState.Downloading,
            RequestId = "req-7f3a",
            Attempt = 2,
            AcceptedSubmits = 1,
            UncertainSubmits = 3,
            Polls = 4,
            DueAt = Now.AddSeconds(90),
            Outputs = [new ProviderOutput("https://cdn.example/out/1.png", null, "image/png"), new ProviderOutput(null, "aGVsbG8=", "image/webp")],
            Files = [new OutputFile("row-0001/1.png", new string('a', 64), 1234), new OutputFile("row-0001/2.webp", new string('b', 64), 5678)],
            CostUsd = 0.04m,
            Error = "provider said 503 once",
            SubmittedAt = Now.AddSeconds(1.5),
            FinishedAt = Now.AddSeconds(2.25),
        };

        (await MoveAsync(job, next)).ShouldBeTrue();

        var stored = await GetAsync(job.Id);
        stored.State.ShouldBe(EditState.Downloading);
        stored.RequestId.ShouldBe("req-7f3a");
        stored.Attempt.ShouldBe(2);
        stored.AcceptedSubmits.ShouldBe(1);
        stored.UncertainSubmits.ShouldBe(3);
        stored.Polls.ShouldBe(4);
        stored.DueAt.ShouldBe(Now.AddSeconds(90));
        stored.Outputs.ShouldBe(next.Outputs);
        stored.Files.ShouldBe(next.Files);
        stored.CostUsd.ShouldBe(0.04m);
        stored.Error.ShouldBe("provider said 503 once");
        stored.SubmittedAt.ShouldBe(Now.AddSeconds(1.5));
        stored.FinishedAt.ShouldBe(Now.AddSeconds(2.25));
        (stored.Key, stored.ContentHash, stored.Provider, stored.BatchId, stored.CreatedAt).ShouldBe((job.Key, job.ContentHash, job.Provider, job.BatchId, job.CreatedAt));
        stored.Spec.Prompt.ShouldBe(job.Spec.Prompt);
    }

    [Fact]
    public async Task TransitionAsync_NullsAndEmptyLists_ClearTheFields()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var filled = job with
        {
            State = EditState.AtProvider,
            RequestId = "req-1",
            Outputs = [new ProviderOutput("https://cdn.example/1.png", null, null)],
            Files = [new OutputFile("a.png", new string('c', 64), 1)],
            Error = "boom",
            SubmittedAt = Now,
            FinishedAt = Now,
        };
        (await MoveAsync(job, filled, keepLease: true)).ShouldBeTrue();

        var cleared = filled with { State = EditState.Pending, RequestId = null, Outputs = [], Files = [], Error = null, SubmittedAt = null, FinishedAt = null };
        (await MoveAsync(filled, cleared)).ShouldBeTrue();

        var stored = await GetAsync(job.Id);
        stored.RequestId.ShouldBeNull();
        stored.Outputs.ShouldBeEmpty();
        stored.Files.ShouldBeEmpty();
        stored.Error.ShouldBeNull();
        stored.SubmittedAt.ShouldBeNull();
        stored.FinishedAt.ShouldBeNull();
    }

    [Fact]
    public async Task TransitionAsync_WrongState_ReturnsFalseAndChangesNothing()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var next = job with { State = EditState.Downloading, RequestId = "req-1" };

        var moved = await Store.TransitionAsync(new EditTransition(next, [EditState.AtProvider, EditState.Submitting], Worker, false, "poll done"), Ct);

        moved.ShouldBeFalse();
        var stored = await GetAsync(job.Id);
        ShouldBeUnchanged(stored, job);
        (await Store.GetHistoryAsync(job.Id, Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task TransitionAsync_WrongOwner_ReturnsFalseAndChangesNothing()
    {
        var job = (await ImportAndClaimAsync(1)).Single();

        var moved = await MoveAsync(job, job with { State = EditState.Submitting }, owner: OtherWorker, reason: "steal");

        moved.ShouldBeFalse();
        ShouldBeUnchanged(await GetAsync(job.Id), job);
        (await Store.GetHistoryAsync(job.Id, Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task TransitionAsync_UnleasedJob_ReturnsFalse()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var released = await PutAsync(job, EditState.Pending, keepLease: false);

        var moved = await MoveAsync(released, released with { State = EditState.Submitting });

        moved.ShouldBeFalse();
    }

    [Fact]
    public async Task TransitionAsync_LeaseExpiredAndRescued_ReturnsFalse()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var submitting = await PutAsync(job, EditState.Submitting, keepLease: true);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(1);

        var moved = await MoveAsync(submitting, submitting with { State = EditState.AtProvider, RequestId = "req-late" });

        moved.ShouldBeFalse();
        var stored = await GetAsync(job.Id);
        stored.State.ShouldBe(EditState.Pending);
        stored.RequestId.ShouldBeNull();
    }

    [Fact]
    public async Task TransitionAsync_KeepLease_KeepsOwnerAndExpiry()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        Time.Advance(TimeSpan.FromSeconds(10));

        (await MoveAsync(job, job with { State = EditState.Submitting }, keepLease: true)).ShouldBeTrue();

        var stored = await GetAsync(job.Id);
        stored.LeaseOwner.ShouldBe(Worker);
        stored.LeaseExpiresAt.ShouldBe(job.LeaseExpiresAt);
    }

    [Fact]
    public async Task TransitionAsync_WithoutKeepLease_ClearsTheLease()
    {
        var job = (await ImportAndClaimAsync(1)).Single();

        (await MoveAsync(job, job with { State = EditState.Submitting })).ShouldBeTrue();

        var stored = await GetAsync(job.Id);
        stored.LeaseOwner.ShouldBeNull();
        stored.LeaseExpiresAt.ShouldBeNull();
    }

    [Fact]
    public async Task TransitionAsync_StateChanges_WritesHistoryEntry()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        Time.Advance(TimeSpan.FromSeconds(3));

        (await MoveAsync(job, job with { State = EditState.Submitting }, keepLease: true)).ShouldBeTrue();

        var history = await Store.GetHistoryAsync(job.Id, Ct);
        history.ShouldBe([new EditHistoryEntry(job.Id, Now, EditState.Pending, EditState.Submitting, null, Worker)]);
    }

    [Fact]
    public async Task TransitionAsync_SameStateWithReason_WritesHistoryEntry()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var atProvider = await PutAsync(job, EditState.AtProvider, keepLease: true);
        var before = (await Store.GetHistoryAsync(job.Id, Ct)).Count;

        (await MoveAsync(atProvider, atProvider with { Polls = 1 }, keepLease: true, reason: "still running")).ShouldBeTrue();

        var history = await Store.GetHistoryAsync(job.Id, Ct);
        history.Count.ShouldBe(before + 1);
        history[^1].ShouldBe(new EditHistoryEntry(job.Id, Now, EditState.AtProvider, EditState.AtProvider, "still running", Worker));
    }

    [Fact]
    public async Task TransitionAsync_SameStateWithoutReason_WritesNoHistory()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var atProvider = await PutAsync(job, EditState.AtProvider, keepLease: true);
        var before = await Store.GetHistoryAsync(job.Id, Ct);

        (await MoveAsync(atProvider, atProvider with { Polls = 1 }, keepLease: true)).ShouldBeTrue();

        (await Store.GetHistoryAsync(job.Id, Ct)).ShouldBe(before);
        (await GetAsync(job.Id)).Polls.ShouldBe(1);
    }
}

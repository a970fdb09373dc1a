using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Testing.Time;

namespace QwenBatch.Storage.Tests;

/// <summary>
/// What every <see cref="IJobStore"/> must do, run against each backend by a subclass. Each test starts with an empty,
/// migrated store whose clock is a <see cref="ManualTimeProvider"/>, so lease and due times are exact.
/// </summary>
public abstract partial class JobStoreContract : IAsyncLifetime
{
    protected const string Provider = "qwen-edit";
    protected const string Worker = "worker-1";
    protected const string OtherWorker = "worker-2";
    protected static readonly TimeSpan Lease = TimeSpan.FromMinutes(5);
    protected static readonly CancellationToken Ct = CancellationToken.None;

    private readonly List<IJobStore> _opened = [];
    private string? _location;
    private IJobStore? _store;

    protected ManualTimeProvider Time { get; } = new();

    protected DateTimeOffset Now => Time.GetUtcNow();

    /// <summary>The store under test: empty and migrated.</summary>
    protected IJobStore Store => _store ?? throw new InvalidOperationException("The test is not initialized.");

    /// <summary>True when an import in one store instance wakes a listener on another (PostgreSQL NOTIFY).</summary>
    protected abstract bool SignalsAcrossInstances { get; }

    /// <summary>True when a listener pulses once as soon as it listens (so a test can wait until it is ready).</summary>
    protected abstract bool PulsesWhenListening { get; }

    /// <summary>A location (connection string, file) for an empty database with the schema already applied.</summary>
    protected abstract Task<string> CleanDatabaseAsync();

    /// <summary>A location for a brand-new database with no schema, for migration tests.</summary>
    protected abstract Task<string> NewDatabaseAsync();

    protected abstract IJobStore CreateStore(string location, TimeProvider time);

    /// <summary>Records a schema version in a database's migration table, as a newer build's migration would.</summary>
    protected abstract Task RecordSchemaVersionAsync(string location, int version);

    /// <summary>Called after every store is disposed, to remove what <see cref="CleanDatabaseAsync"/> made.</summary>
    protected virtual Task CleanUpAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        _location = await CleanDatabaseAsync();
        _store = OpenStore();
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }

        await CleanUpAsync();
    }

    /// <summary>Another store instance on the test's database (as another process would have), sharing the clock.</summary>
    protected IJobStore OpenStore() => Track(CreateStore(_location!, Time));

    protected IJobStore OpenStore(string location) => Track(CreateStore(location, Time));

    private IJobStore Track(IJobStore store)
    {
        _opened.Add(store);
        return store;
    }

    protected static NewBatch Batch(string name = "spring-catalog") =>
        new(name, $"/manifests/{name}.csv", Provider, $"/output/{name}");

    protected static NewEdit NewEdit(string key, string hash = "h1") =>
        new(key, hash, Provider, new EditSpec
        {
            Prompt = $"put {key} on a white background",
            Images = [$"/images/{key}.png"],
            NegativePrompt = "blurry",
            Size = "1024*1024",
            N = 2,
            Seed = 42,
            Variables = new Dictionary<string, string> { ["sku"] = key.ToUpperInvariant() },
        });

    protected static NewEdit[] NewJobs(int count, string prefix = "row") =>
        Enumerable.Range(1, count).Select(i => NewEdit($"{prefix}-{i:D4}")).ToArray();

    protected Task<BatchImport> ImportAsync(int count, string name = "spring-catalog") =>
        Store.ImportBatchAsync(Batch(name), NewJobs(count), Ct);

    protected Task<IReadOnlyList<EditRecord>> ClaimAsync(string owner = Worker, int limit = 100, long? batchId = null, TimeSpan? lease = null) =>
        Store.ClaimAsync(new ClaimRequest(owner, limit, lease ?? Lease, batchId), Ct);

    /// <summary>A guarded write from the job's current state, as the state changer does it.</summary>
    protected Task<bool> MoveAsync(EditRecord current, EditRecord next, string owner = Worker, bool keepLease = false, string? reason = null) =>
        Store.TransitionAsync(new EditTransition(next, [current.State], owner, keepLease, reason), Ct);

    /// <summary>Imports <paramref name="count"/> jobs and leases them all to <paramref name="owner"/>, in id order.</summary>
    protected async Task<IReadOnlyList<EditRecord>> ImportAndClaimAsync(int count, string owner = Worker, string name = "spring-catalog")
    {
        var import = await ImportAsync(count, name);
        var claimed = await ClaimAsync(owner, limit: count, batchId: import.Batch.Id);
        claimed.Count.ShouldBe(count);
        return claimed;
    }

    /// <summary>Puts a leased job into <paramref name="state"/>, still leased when <paramref name="keepLease"/>.</summary>
    protected async Task<EditRecord> PutAsync(EditRecord job, EditState state, bool keepLease, DateTimeOffset? dueAt = null, string owner = Worker)
    {
        var next = job with { State = state, DueAt = dueAt ?? job.DueAt };
        (await MoveAsync(job, next, owner, keepLease)).ShouldBeTrue();
        return await GetAsync(job.Id);
    }

    protected async Task<EditRecord> GetAsync(long jobId) =>
        await Store.GetJobAsync(jobId, Ct) ?? throw new InvalidOperationException($"Job {jobId} is missing.");

    /// <summary>Every column equal (records compare lists by reference, so this compares them by content).</summary>
    protected static void ShouldBeUnchanged(EditRecord actual, EditRecord expected)
    {
        actual.ShouldSatisfyAllConditions(
            () => actual.Id.ShouldBe(expected.Id),
            () => actual.BatchId.ShouldBe(expected.BatchId),
            () => actual.Key.ShouldBe(expected.Key),
            () => actual.ContentHash.ShouldBe(expected.ContentHash),
            () => actual.State.ShouldBe(expected.State),
            () => actual.Provider.ShouldBe(expected.Provider),
            () => StoreJson.Write(actual.Spec).ShouldBe(StoreJson.Write(expected.Spec)),
            () => actual.RequestId.ShouldBe(expected.RequestId),
            () => actual.Attempt.ShouldBe(expected.Attempt),
            () => actual.AcceptedSubmits.ShouldBe(expected.AcceptedSubmits),
            () => actual.UncertainSubmits.ShouldBe(expected.UncertainSubmits),
            () => actual.Polls.ShouldBe(expected.Polls),
            () => actual.DueAt.ShouldBe(expected.DueAt),
            () => actual.LeaseOwner.ShouldBe(expected.LeaseOwner),
            () => actual.LeaseExpiresAt.ShouldBe(expected.LeaseExpiresAt),
            () => actual.Outputs.ShouldBe(expected.Outputs),
            () => actual.Files.ShouldBe(expected.Files),
            () => actual.CostUsd.ShouldBe(expected.CostUsd),
            () => actual.Error.ShouldBe(expected.Error),
            () => actual.CreatedAt.ShouldBe(expected.CreatedAt),
            () => actual.SubmittedAt.ShouldBe(expected.SubmittedAt),
            () => actual.FinishedAt.ShouldBe(expected.FinishedAt));
    }
}

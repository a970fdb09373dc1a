using Microsoft.Extensions.Time.Testing;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using QwenBatch.Providers;
using QwenBatch.Testing.Time;

namespace QwenBatch.Storage.Tests;

/// <summary>
/// The base of every role's contract suite, run against each backend by a subclass that names its
/// <see cref="StoreBackend"/>. Each test starts with an empty, migrated store whose clock is a
/// <see cref="FakeTimeProvider"/>, so due times, days and history times are exact.
/// </summary>
public abstract class StoreContract : IAsyncLifetime
{
    protected const string Provider = "qwen-edit";
    protected const string OtherProvider = "wavespeed";
    protected const string Server = "server-1";

    /// <summary>What one image costs; every edit <see cref="NewEdit"/> makes asks for 2, so it reserves <see cref="EditCost"/>.</summary>
    protected const decimal Price = 0.02m;

    protected const decimal EditCost = 2 * Price;

    protected static readonly CancellationToken Ct = CancellationToken.None;

    private readonly List<IStore> _opened = [];
    private string? _location;
    private IStore? _store;

    protected FakeTimeProvider Time { get; } = TestClock.Create();

    protected DateTimeOffset Now => Time.GetUtcNow();

    /// <summary>The backend under test; one per test class instance.</summary>
    protected abstract StoreBackend Backend { get; }

    /// <summary>The store under test: empty and migrated.</summary>
    protected IStore Store => _store ?? throw new InvalidOperationException("The test is not initialized.");

    public async Task InitializeAsync()
    {
        _location = await Backend.CleanDatabaseAsync();
        _store = OpenStore();
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }

        await Backend.CleanUpAsync();
    }

    /// <summary>Another store on the test's database (as another process would have), sharing the clock.</summary>
    protected IStore OpenStore() => OpenStore(_location!);

    protected IStore OpenStore(string location)
    {
        var store = Backend.CreateStore(location, Time);
        _opened.Add(store);
        return store;
    }

    protected static NewBatch Batch(string name = "spring-catalog", decimal? budget = null) =>
        new(name, $"/manifests/{name}.csv", Provider, $"/output/{name}", budget);

    protected static NewEdit NewEdit(string key, string hash = "h1", string provider = Provider) =>
        new(key, hash, provider, new EditSpec
        {
            Prompt = $"put {key} on a white background",
            Images = [$"/images/{key}.png"],
            NegativePrompt = "blurry",
            Size = "1024*1024",
            N = 2,
            Seed = 42,
            Variables = new Dictionary<string, string> { ["sku"] = key.ToUpperInvariant() },
        });

    protected static NewEdit[] NewEdits(int count, string prefix = "row", string provider = Provider) =>
        Enumerable.Range(1, count).Select(i => NewEdit($"{prefix}-{i:D4}", provider: provider)).ToArray();

    protected Task<BatchImport> ImportAsync(int count, string name = "spring-catalog", decimal? budget = null, IStore? store = null) =>
        (store ?? Store).ImportBatchAsync(Batch(name, budget), NewEdits(count), Ct);

    /// <summary>The batch's edits in id order (import order).</summary>
    protected async Task<List<EditRecord>> EditsAsync(long batchId) => [.. (await Store.GetEditsAsync(batchId, Ct)).OrderBy(e => e.Id)];

    /// <summary>Imports <paramref name="count"/> edits and returns them in import order.</summary>
    protected async Task<List<EditRecord>> ImportEditsAsync(int count, string name = "spring-catalog", decimal? budget = null) =>
        await EditsAsync((await ImportAsync(count, name, budget)).Batch.Id);

    protected async Task<EditRecord> GetAsync(long editId) =>
        await Store.GetEditAsync(editId, Ct) ?? throw new InvalidOperationException($"Edit {editId} is missing.");

    /// <summary>The account of <paramref name="name"/> as the feed policy sees it (the client is never called).</summary>
    protected static ProviderAccount Account(string name = Provider, int? maxInFlight = null, decimal? dailyBudget = null, decimal price = Price) =>
        new(name, NoProvider.Instance, new ProviderOptions { PricePerImage = price, MaxInFlight = maxInFlight, DailyBudgetUsd = dailyBudget });

    /// <summary>The real feed policy over <see cref="Provider"/> (with the limits given) and <see cref="OtherProvider"/>.</summary>
    protected static FeedPolicy Policy(int? maxInFlight = null, decimal? dailyBudget = null) =>
        new(new ProviderRegistry([Account(Provider, maxInFlight, dailyBudget), Account(OtherProvider)]));

    /// <summary>One feeder round by <see cref="Server"/> with the real policy unless another is given.</summary>
    protected Task<IReadOnlyList<EditRecord>> FeedAsync(
        int limit = 100, long? batchId = null, IFeedPolicy? policy = null, IReadOnlyDictionary<string, int>? providerLimits = null, IStore? store = null) =>
        (store ?? Store).FeedAsync(new FeedRequest(Server, limit, batchId, providerLimits), policy ?? Policy(), Ct);

    /// <summary>Imports <paramref name="count"/> edits and feeds them all: queued, each with its cost reserved.</summary>
    protected async Task<List<EditRecord>> QueueAsync(int count, string name = "spring-catalog")
    {
        var import = await ImportAsync(count, name);
        var queued = await FeedAsync(count, import.Batch.Id);
        queued.Count.ShouldBe(count);
        return [.. queued.OrderBy(e => e.Id)];
    }

    /// <summary>A guarded write from the edit's current state, as the state changer makes it.</summary>
    protected async Task<bool> MoveAsync(EditRecord current, EditRecord next, string? reason = null, string by = Server) =>
        (await Store.TransitionManyAsync([new EditTransition(next, [current.State], by, reason)], Ct))[0];

    /// <summary>Puts an edit into <paramref name="state"/> (the store does not check the transition table; the state changer does).</summary>
    protected async Task<EditRecord> PutAsync(EditRecord edit, EditState state, DateTimeOffset? dueAt = null)
    {
        (await MoveAsync(edit, edit with { State = state, DueAt = dueAt ?? edit.DueAt })).ShouldBeTrue();
        return await GetAsync(edit.Id);
    }

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
            () => actual.HangfireJob.ShouldBe(expected.HangfireJob),
            () => actual.UpdatedAt.ShouldBe(expected.UpdatedAt),
            () => actual.Outputs.ShouldBe(expected.Outputs),
            () => actual.Files.ShouldBe(expected.Files),
            () => actual.CostUsd.ShouldBe(expected.CostUsd),
            () => actual.ReservedUsd.ShouldBe(expected.ReservedUsd),
            () => actual.CancelRequested.ShouldBe(expected.CancelRequested),
            () => actual.Error.ShouldBe(expected.Error),
            () => actual.CreatedAt.ShouldBe(expected.CreatedAt),
            () => actual.SubmittedAt.ShouldBe(expected.SubmittedAt),
            () => actual.FinishedAt.ShouldBe(expected.FinishedAt));
    }

    /// <summary>The maintained counters, per batch and state, equal a count over the edits themselves.</summary>
    protected async Task AssertCountersMatchAsync()
    {
        var counters = await Store.GetStateCountsAsync(Ct);
        var actual = new List<BatchStateCount>();
        foreach (var batch in await Store.GetBatchesAsync(Ct))
        {
            actual.AddRange((await Store.GetEditsAsync(batch.Id, Ct)).GroupBy(e => e.State).Select(g => new BatchStateCount(batch.Id, g.Key, g.Count())));
        }

        counters.OrderBy(c => c.BatchId).ThenBy(c => c.State).ShouldBe(actual.OrderBy(c => c.BatchId).ThenBy(c => c.State));
    }

    /// <summary>Each batch's reserved money equals the sum of its edits' reservations.</summary>
    protected async Task AssertReservationsMatchAsync()
    {
        foreach (var batch in await Store.GetBatchesAsync(Ct))
        {
            batch.ReservedUsd.ShouldBe((await Store.GetEditsAsync(batch.Id, Ct)).Sum(e => e.ReservedUsd), $"batch {batch.Name}'s reservation");
        }
    }
}

using Microsoft.Extensions.Time.Testing;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Storage;
using QwenBatch.Storage.Sqlite;
using QwenBatch.Testing.Time;

namespace QwenBatch.Core.Tests.Support;

/// <summary>A SQLite store in a folder of its own, on a manual clock, for the Core parts that read and write the store.</summary>
internal sealed class SqliteStoreScope : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("qwenbatch-core-").FullName;
    private readonly List<IStore> _stores = [];

    public SqliteStoreScope() => Store = NewStore();

    public FakeTimeProvider Time { get; } = TestClock.Create();

    public IStore Store { get; }

    public string StorageDir => Path.Combine(_directory, "out");

    /// <summary>Another store on the same file, as a second process would have.</summary>
    public IStore NewStore()
    {
        var store = new SqliteStore(Path.Combine(_directory, "state.db"), Time);
        _stores.Add(store);
        return store;
    }

    public async Task<BatchRecord> ImportAsync(int edits, string name = "batch", decimal? budget = null)
    {
        await Store.MigrateAsync(CancellationToken.None);
        var spec = Enumerable.Range(1, edits).Select(i => new NewEdit($"edit-{i:000}", $"h{i}", "simulator", new EditSpec
        {
            Prompt = $"prompt {i}",
            Images = ["https://images.example/in.png"],
        })).ToList();
        return (await Store.ImportBatchAsync(new NewBatch(name, $"/manifests/{name}.csv", "simulator", Path.Combine(StorageDir, name), budget), spec, CancellationToken.None)).Batch;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }
}

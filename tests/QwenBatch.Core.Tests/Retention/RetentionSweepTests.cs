using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Core.Tests.Support;
using QwenBatch.Retention;

namespace QwenBatch.Core.Tests.Retention;

public sealed class RetentionSweepTests : IAsyncLifetime
{
    private readonly SqliteStoreScope _engine = new();

    public Task InitializeAsync() => _engine.Store.MigrateAsync(CancellationToken.None);

    public async Task DisposeAsync() => await _engine.DisposeAsync();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PurgeAsync_OldFinishedAndRecentBatches_DeletesOnlyOldAndFilesOnlyWhenConfigured(bool deleteFiles)
    {
        var old = await _engine.ImportAsync(5, "old");
        await _engine.Store.RequestCancelAsync(old.Id, CancellationToken.None);
        Directory.CreateDirectory(old.StorageDir);
        _engine.Time.Advance(TimeSpan.FromDays(31));
        var recent = await _engine.ImportAsync(3, "recent");
        await _engine.Store.RequestCancelAsync(recent.Id, CancellationToken.None);
        var loop = new RetentionSweep(_engine.Store, new RetentionOptions { ChunkSize = 2, DeleteFiles = deleteFiles }, _engine.Time, NullLogger<RetentionSweep>.Instance);

        var purged = await loop.PurgeAsync(CancellationToken.None);

        purged.ShouldBe((5, 1));
        (await _engine.Store.GetBatchesAsync(CancellationToken.None)).Select(b => b.Name).ShouldBe(["recent"]);
        Directory.Exists(old.StorageDir).ShouldBe(!deleteFiles);
    }

    [Fact]
    public async Task PurgeAsync_NothingOldEnough_DeletesNothing()
    {
        var batch = await _engine.ImportAsync(2, "young");
        await _engine.Store.RequestCancelAsync(batch.Id, CancellationToken.None);
        _engine.Time.Advance(TimeSpan.FromDays(29));
        var loop = new RetentionSweep(_engine.Store, new RetentionOptions(), _engine.Time, NullLogger<RetentionSweep>.Instance);

        (await loop.PurgeAsync(CancellationToken.None)).ShouldBe((0, 0));
        (await _engine.Store.GetEditsAsync(batch.Id, CancellationToken.None)).Count.ShouldBe(2);
    }
}

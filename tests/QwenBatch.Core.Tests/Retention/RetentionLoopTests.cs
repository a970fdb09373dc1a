using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Core.Tests.Server;
using QwenBatch.Retention;

namespace QwenBatch.Core.Tests.Retention;

public sealed class RetentionLoopTests : IAsyncLifetime
{
    private readonly EngineHarness _engine = new();

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
        var loop = new RetentionLoop(_engine.Store, new RetentionOptions { ChunkSize = 2, DeleteFiles = deleteFiles }, _engine.Time, NullLogger<RetentionLoop>.Instance);

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
        var loop = new RetentionLoop(_engine.Store, new RetentionOptions(), _engine.Time, NullLogger<RetentionLoop>.Instance);

        (await loop.PurgeAsync(CancellationToken.None)).ShouldBe((0, 0));
        (await _engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).Count.ShouldBe(2);
    }

    [Fact]
    public async Task PurgeAsync_ServerSilentLongerThanMaxAge_IsForgotten()
    {
        var started = _engine.Time.GetUtcNow();
        await _engine.Store.RegisterServerAsync(new QwenBatch.Server.ServerInfo("crashed", "host-a", 1, 4, started, started), CancellationToken.None);
        _engine.Time.Advance(TimeSpan.FromDays(31));
        var now = _engine.Time.GetUtcNow();
        await _engine.Store.RegisterServerAsync(new QwenBatch.Server.ServerInfo("alive", "host-b", 2, 4, now, now), CancellationToken.None);
        var loop = new RetentionLoop(_engine.Store, new RetentionOptions(), _engine.Time, NullLogger<RetentionLoop>.Instance);

        await loop.PurgeAsync(CancellationToken.None);

        (await _engine.Store.GetServersAsync(CancellationToken.None)).Select(s => s.Id).ShouldBe(["alive"]);
    }
}

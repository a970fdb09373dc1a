using Hangfire.Server;
using QwenBatch.Edits;

namespace QwenBatch.Hangfire.Housekeeping;

/// <summary>Writes what submits learned while the store was away, as soon as it answers (see <see cref="UnwrittenMoves"/>).</summary>
public sealed class UnwrittenWriter(UnwrittenMoves unwritten) : IBackgroundProcessAsync
{
    /// <summary>On the thread pool, as every QwenBatch background process runs (see the feeder's).</summary>
    public Task ExecuteAsync(BackgroundProcessContext context) => Task.Run(() => unwritten.RunAsync(context.StoppingToken), CancellationToken.None);
}

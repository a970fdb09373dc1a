using Hangfire.Server;
using QwenBatch.Edits;

namespace QwenBatch.Hangfire.Housekeeping;

/// <summary>Writes what submits learned while the store was away, as soon as it answers (see <see cref="UnwrittenMoves"/>).</summary>
public sealed class UnwrittenWriter(UnwrittenMoves unwritten) : IBackgroundProcessAsync
{
    public Task ExecuteAsync(BackgroundProcessContext context) => unwritten.RunAsync(context.StoppingToken);
}

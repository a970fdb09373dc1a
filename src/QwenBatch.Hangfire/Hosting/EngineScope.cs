namespace QwenBatch.Hangfire.Hosting;

/// <summary>What a server works on: every batch (a worker, <c>serve</c>), or one batch until it settles (the <c>run</c> command).</summary>
public sealed record EngineScope(long? BatchId = null)
{
    public static EngineScope Everything { get; } = new();

    /// <summary>Whether the fleet's maintenance (retention, continuations of any batch, schedules) runs here.</summary>
    public bool ServesFleet => BatchId is null;
}

namespace QwenBatch.Server;

/// <summary>
/// A maintenance loop a worker process runs beside its job loop (the scheduler, retention), started and stopped with
/// the <see cref="JobServer"/> when it serves every batch.
/// </summary>
public interface IServerLoop
{
    Task RunAsync(string serverId, CancellationToken ct);
}

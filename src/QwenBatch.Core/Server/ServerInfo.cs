namespace QwenBatch.Server;

/// <summary>A worker process as registered in the store.</summary>
public sealed record ServerInfo(string Id, string Host, int ProcessId, int Concurrency, DateTimeOffset StartedAt, DateTimeOffset HeartbeatAt);

using System.Text.Json.Serialization;

namespace QwenBatch.Simulator.Odirouter;

internal sealed record SubmitResponse(string RequestId, string ResponseUrl, string StatusUrl, string CancelUrl, int QueuePosition);

/// <summary>QueuePosition only for IN_QUEUE, Error only for FAILED.</summary>
internal sealed record StatusResponse(string RequestId, string Status, int? QueuePosition, string? Error);

internal sealed record ResultResponse(
    string RequestId,
    string Status,
    IReadOnlyList<OutputImage> Images,
    int Seed,
    IReadOnlyList<bool> HasNsfwConcepts,
    ResultTimings Timings);

internal sealed record OutputImage(string Url, string ContentType, int Width, int Height);

internal sealed record ResultTimings(long Inference);

internal sealed record DetailResponse(string Detail);

internal sealed record StatusDetailResponse(string Status, string Detail);

internal sealed record CancelResponse(string Status);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SubmitResponse))]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(ResultResponse))]
[JsonSerializable(typeof(DetailResponse))]
[JsonSerializable(typeof(StatusDetailResponse))]
[JsonSerializable(typeof(CancelResponse))]
[JsonSerializable(typeof(SimulatorStats))]
[JsonSerializable(typeof(WaveSpeed.WaveSpeedEnvelope))]
[JsonSerializable(typeof(WaveSpeed.WaveSpeedPrediction))]
[JsonSerializable(typeof(WaveSpeed.WaveSpeedSecretEnvelope))]
[JsonSerializable(typeof(WaveSpeed.WaveSpeedUploadEnvelope))]
[JsonSerializable(typeof(WaveSpeed.WaveSpeedTicketEnvelope))]
internal sealed partial class SimulatorJsonContext : JsonSerializerContext;

namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>Every WaveSpeed answer: <c>{code, message, data}</c>; data is absent on errors.</summary>
internal sealed record WaveSpeedEnvelope(int Code, string Message, WaveSpeedPrediction? Data);

/// <summary>One prediction as WaveSpeed shows it; outputs are empty until completed.</summary>
internal sealed record WaveSpeedPrediction(
    string Id,
    string Model,
    IReadOnlyList<string> Outputs,
    WaveSpeedUrls Urls,
    IReadOnlyList<bool> HasNsfwContents,
    string Status,
    string CreatedAt,
    string Error,
    WaveSpeedTimings Timings);

internal sealed record WaveSpeedUrls(string Get);

internal sealed record WaveSpeedTimings(long Inference);

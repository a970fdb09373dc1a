namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>Every WaveSpeed answer: <c>{code, message, data}</c>; data is absent on errors.</summary>
internal sealed record WaveSpeedEnvelope(int Code, string Message, WaveSpeedPrediction? Data);

/// <summary>
/// One prediction as WaveSpeed shows it; outputs are empty until completed. The result endpoint's <c>data</c> and a webhook's
/// body are this one record, so a receiver parses both alike; only the webhook carries <paramref name="Input"/>, the
/// submit's body, as WaveSpeed's webhook page shows and its result page does not.
/// </summary>
internal sealed record WaveSpeedPrediction(
    string Id,
    string Model,
    System.Text.Json.JsonElement? Input,
    IReadOnlyList<string> Outputs,
    WaveSpeedUrls Urls,
    IReadOnlyList<bool> HasNsfwContents,
    string Status,
    string CreatedAt,
    string Error,
    WaveSpeedTimings Timings);

internal sealed record WaveSpeedUrls(string Get);

internal sealed record WaveSpeedTimings(long Inference);

/// <summary>The answer of <c>GET /api/v3/webhook/secret</c>.</summary>
internal sealed record WaveSpeedSecretEnvelope(int Code, string Message, WaveSpeedSecret? Data);

internal sealed record WaveSpeedSecret(string Secret);

/// <summary>The answer of the documented binary upload.</summary>
internal sealed record WaveSpeedUploadEnvelope(int Code, string Message, WaveSpeedUpload? Data);

internal sealed record WaveSpeedUpload(string Type, string DownloadUrl, string Filename, long Size);

/// <summary>The answer to the SDK's upload ticket: where the file will be served, and where to PUT it.</summary>
internal sealed record WaveSpeedTicketEnvelope(int Code, string Message, WaveSpeedTicket? Data);

internal sealed record WaveSpeedTicket(string DownloadUrl, WaveSpeedUploadInstruction Upload);

internal sealed record WaveSpeedUploadInstruction(string Url, string Method, IReadOnlyDictionary<string, string> Headers);

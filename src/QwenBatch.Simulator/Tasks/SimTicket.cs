namespace QwenBatch.Simulator.Tasks;

/// <summary>
/// Everything the simulator needs to answer for a task, carried inside its request id so any
/// simulator instance (a restart, another port) can answer for ids issued by another one.
/// </summary>
/// <param name="StartMs">Unix ms when the task leaves the queue (IN_PROGRESS from then).</param>
/// <param name="DoneMs">Unix ms when the task ends (COMPLETED or FAILED from then).</param>
/// <param name="Count">Output images (1–6).</param>
/// <param name="Width">Output width in pixels.</param>
/// <param name="Height">Output height in pixels.</param>
/// <param name="Seed">Seed echoed in the response and used for the image pattern.</param>
/// <param name="Failed">Whether the task ends FAILED instead of COMPLETED.</param>
/// <param name="Nonce">Makes ids unique and orders tasks of one instance.</param>
/// <param name="Format">Output file format (the odirouter API always gets PNG).</param>
/// <param name="Base64">Outputs inline as base64 data URIs instead of URLs (WaveSpeed enable_base64_output).</param>
internal readonly record struct SimTicket(
    long StartMs,
    long DoneMs,
    int Count,
    int Width,
    int Height,
    int Seed,
    bool Failed,
    uint Nonce,
    Images.OutputFormat Format = Images.OutputFormat.Png,
    bool Base64 = false);

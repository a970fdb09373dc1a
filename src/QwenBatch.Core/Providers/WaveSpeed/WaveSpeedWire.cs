using System.Text.Json;
using QwenBatch.Edits;

namespace QwenBatch.Providers.WaveSpeed;

/// <summary>The WaveSpeed field mapping, both ways.</summary>
internal static class WaveSpeedWire
{
    /// <summary>
    /// prompt, images, size, seed, output_format and enable_base64_output; enable_sync_mode is always false because no
    /// worker waits on a provider. n, negative_prompt, prompt_extend and watermark do not exist here (see ProviderLimits).
    /// </summary>
    public static Dictionary<string, object?> SubmitBody(EditRequest request, bool base64Output)
    {
        var body = new Dictionary<string, object?>
        {
            ["prompt"] = request.Prompt,
            ["images"] = request.Images,
            ["seed"] = request.Seed ?? -1,
            ["enable_base64_output"] = base64Output,
            ["enable_sync_mode"] = false,
        };
        if (request.Size is { } size)
        {
            body["size"] = ProviderLimits.WaveSpeed.WireSize(size);
        }

        if (request.OutputFormat is { } format)
        {
            body["output_format"] = format.ToLowerInvariant();
        }

        return body;
    }

    /// <summary>
    /// A prediction as the result endpoint's <c>data</c> and a webhook delivery's body both carry it: created and
    /// processing are waiting, completed has its outputs (none is a failure), failed its error.
    /// </summary>
    public static PollResult Result(JsonElement data)
    {
        var state = data.Str("status");
        switch (state)
        {
            case "created":
                return PollResult.Queued(null);
            case "processing":
                return PollResult.Running;
            case "completed":
                var outputs = Outputs(data);
                return outputs.Count == 0
                    ? new PollResult(PollStatus.Failed, Error: "the provider reported completion without any output image")
                    : new PollResult(PollStatus.Completed, Outputs: outputs, Inference: Inference(data));
            case "failed":
                return new PollResult(PollStatus.Failed, Error: data.Str("error") is { Length: > 0 } error ? error : "the provider reported the task failed");
            default:
                return new PollResult(PollStatus.Unknown, RawStatus: state);
        }
    }

    /// <summary>data.outputs (URLs, or base64 / data URIs), each with its data.has_nsfw_contents flag.</summary>
    public static IReadOnlyList<ProviderOutput> Outputs(JsonElement data)
    {
        var outputs = new List<ProviderOutput>();
        if (!data.TryGetProperty("outputs", out var items) || items.ValueKind != JsonValueKind.Array)
        {
            return outputs;
        }

        var nsfw = data.TryGetProperty("has_nsfw_contents", out var flags) && flags.ValueKind == JsonValueKind.Array
            ? flags.EnumerateArray().Select(f => f.ValueKind == JsonValueKind.True ? true : f.ValueKind == JsonValueKind.False ? false : (bool?)null).ToList()
            : [];
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.String && item.GetString() is { Length: > 0 } value)
            {
                var flag = index < nsfw.Count ? nsfw[index] : null;
                outputs.Add(EditRequestBuilder.IsRemote(value) && !value.StartsWith("data:", StringComparison.OrdinalIgnoreCase)
                    ? new ProviderOutput(value, null, null, flag)
                    : new ProviderOutput(null, value, null, flag));
            }

            index++;
        }

        return outputs;
    }

    /// <summary>data.timings.inference, in milliseconds.</summary>
    public static TimeSpan? Inference(JsonElement data) =>
        data.TryGetProperty("timings", out var timings) && timings.ValueKind == JsonValueKind.Object
        && timings.TryGetProperty("inference", out var ms) && ms.ValueKind == JsonValueKind.Number && ms.TryGetDouble(out var value)
            ? TimeSpan.FromMilliseconds(value)
            : null;
}

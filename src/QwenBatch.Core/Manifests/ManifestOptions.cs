namespace QwenBatch.Manifests;

/// <summary>How to read a manifest: the batch's provider (for its field limits) and the options for foreign exports.</summary>
public sealed record ManifestOptions
{
    /// <summary>The batch's provider; a job's own <c>provider</c> field wins. Default: the simulator (odirouter's limits).</summary>
    public string Provider { get; init; } = Providers.ProviderNames.Simulator;

    /// <summary>A prompt template (<c>--prompt</c>) applied to every job, with <c>{column}</c> substituted from the row.</summary>
    public string? PromptTemplate { get; init; }

    /// <summary>Field name to the manifest's own column name (<c>--map "id=Handle,images=Image Src"</c>).</summary>
    public IReadOnlyDictionary<string, string> FieldMap { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Where local image paths may point. Null (the CLI): relative to the manifest, anywhere. Set (uploads to the dashboard):
    /// local paths resolve against this folder and must stay inside it; an empty string refuses every local path, so an
    /// uploaded manifest can only name URLs and data URIs. Outside paths are refused without being touched.
    /// </summary>
    public string? InputRoot { get; init; }

    /// <summary>
    /// The input root holds images uploaded with the manifest, stored by the names their client gave (curl sends only a
    /// file's own name): a local path not found under the root is looked for there by its file name alone.
    /// </summary>
    public bool MatchUploadedNames { get; init; }

    /// <summary>At most this many errors are kept (the count goes on); a broken file cannot fill the memory with them.</summary>
    public int MaxErrors { get; init; } = 10_000;

    /// <summary>The JSON reader's starting buffer; tests make it tiny so every token crosses a refill.</summary>
    internal int JsonBufferSize { get; init; } = JsonTokenStream.DefaultBufferSize;

    /// <summary>
    /// Parses <c>--map</c>: comma-separated <c>field=Column</c> pairs. Returns the map, or an error message saying what was
    /// expected.
    /// </summary>
    public static (IReadOnlyDictionary<string, string> Map, string? Error) ParseMap(string? text)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (string.IsNullOrWhiteSpace(text))
        {
            return (map, null);
        }

        foreach (var pair in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var field = eq > 0 ? pair[..eq].Trim() : "";
            var column = eq > 0 ? pair[(eq + 1)..].Trim() : "";
            if (field.Length == 0 || column.Length == 0)
            {
                return (map, $"--map: '{pair}' is not a mapping; expected field=Column, such as \"id=Handle,images=Image Src\"");
            }

            if (!ManifestFields.Known.Contains(field) || field.Equals(ManifestFields.Matrix, StringComparison.OrdinalIgnoreCase))
            {
                return (map, $"--map: '{field}' is not a manifest field; expected one of {string.Join(", ", ManifestFields.Known.Where(f => f != ManifestFields.Matrix))}");
            }

            map[field.ToLowerInvariant()] = column;
        }

        return (map, null);
    }
}

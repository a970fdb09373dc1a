namespace QwenBatch.Manifests;

/// <summary>
/// One job as a format reader found it, before validation: its line, its cells by name (case-insensitive, trimmed), and
/// for JSON the image list, the fan-out entries and any shape errors (a number where a list was expected…).
/// </summary>
internal sealed class ManifestRow(int line, int columns = 0)
{
    public int Line { get; private set; } = line;

    public Dictionary<string, string> Cells { get; } = new(columns, StringComparer.OrdinalIgnoreCase);

    /// <summary>JSON <c>"images": [ … ]</c>; CSV uses the <c>images</c> cell.</summary>
    public List<string>? ImageList { get; set; }

    /// <summary>JSON <c>"matrix": [ { … }, … ]</c>: one job per entry.</summary>
    public List<Dictionary<string, string>>? Matrix { get; set; }

    /// <summary>Problems with the row's shape, found by the reader; the row yields no job when there are any.</summary>
    public List<(string? Field, string Message)> ShapeErrors { get; } = [];

    /// <summary>
    /// Empties the row for the next one of a CSV file, which reuses it: a row is validated before the next is read, and
    /// whatever outlives it (a refused job's cells, a job's variables) is a copy.
    /// </summary>
    public void Reuse(int line)
    {
        Line = line;
        Cells.Clear();
        ShapeErrors.Clear();
    }
}

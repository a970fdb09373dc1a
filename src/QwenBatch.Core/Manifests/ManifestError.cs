namespace QwenBatch.Manifests;

/// <summary>One problem (an error or a warning) in a manifest, located by file, 1-based line and field.</summary>
public sealed record ManifestError(string File, int Line, string? Field, string Message)
{
    public override string ToString() => Field is null ? $"{File}:{Line}: {Message}" : $"{File}:{Line}: {Field}: {Message}";
}

/// <summary>One job read from a manifest, after fan-out.</summary>
/// <param name="Line">The line the job starts on (CSV record, JSONL line, or JSON object).</param>
/// <param name="Key">The job id, unique within the manifest.</param>
/// <param name="Spec">What to ask the provider for.</param>
/// <param name="Provider">The job's own <c>provider</c> field, or null to use the batch's.</param>
public sealed record ManifestJob(int Line, string Key, Edits.EditSpec Spec, string? Provider = null)
{
    /// <summary>
    /// How many jobs this one is imported as with <paramref name="batchProvider"/> (its own provider wins): one, or — where
    /// the provider makes one image per task (WaveSpeed) — one per wanted output, keyed <see cref="PartKey"/>.
    /// </summary>
    public int Parts(string batchProvider) => Spec.N <= Providers.ProviderLimits.For(Provider ?? batchProvider).MaxOutputs ? 1 : Spec.N;

    /// <summary>The key of part <paramref name="k"/> (1-based) of a job imported as several: &lt;id&gt;-&lt;k&gt;.</summary>
    public string PartKey(int k) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Key}-{k}");
}

/// <summary>A job that was refused, kept so that <c>--skip-invalid</c> can list it.</summary>
public sealed record SkippedJob(int Line, string Key, IReadOnlyList<ManifestError> Errors)
{
    /// <summary>The row's cells as read, so the refused job can be listed in errors.csv in a shape that can be fed back.</summary>
    public IReadOnlyDictionary<string, string> Cells { get; init; } = new Dictionary<string, string>();
}

/// <summary>Everything a manifest yielded; valid only when <see cref="Errors"/> is empty.</summary>
/// <param name="Path">The manifest's absolute path.</param>
/// <param name="Name">The manifest's own name (JSON <c>name</c>), or null.</param>
/// <param name="Jobs">The valid jobs (all of them only when <see cref="IsValid"/>).</param>
/// <param name="Errors">Every error, in file order.</param>
/// <param name="Warnings">Every warning, in file order; warnings never block a run.</param>
public sealed record Manifest(string Path, string? Name, IReadOnlyList<ManifestJob> Jobs, IReadOnlyList<ManifestError> Errors, IReadOnlyList<ManifestError> Warnings)
{
    public bool IsValid => Errors.Count == 0;

    /// <summary>The jobs that were refused (what <c>--skip-invalid</c> leaves out).</summary>
    public IReadOnlyList<SkippedJob> Skipped { get; init; } = [];
}

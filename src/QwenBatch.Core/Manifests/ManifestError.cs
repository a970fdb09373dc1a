namespace QwenBatch.Manifests;

/// <summary>One problem in a manifest, located by file, 1-based line and field.</summary>
public sealed record ManifestError(string File, int Line, string? Field, string Message)
{
    public override string ToString() => Field is null ? $"{File}:{Line}: {Message}" : $"{File}:{Line}: {Field}: {Message}";
}

/// <summary>One job read from a manifest.</summary>
public sealed record ManifestJob(int Line, string Key, Jobs.JobSpec Spec);

/// <summary>Everything a manifest yielded; valid only when <see cref="Errors"/> is empty.</summary>
public sealed record Manifest(string Path, IReadOnlyList<ManifestJob> Jobs, IReadOnlyList<ManifestError> Errors)
{
    public bool IsValid => Errors.Count == 0;
}

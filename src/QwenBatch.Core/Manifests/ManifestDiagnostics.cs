namespace QwenBatch.Manifests;

/// <summary>Collects a manifest's errors and warnings as it is read, in file order, with a cap on how many are kept.</summary>
public sealed class ManifestDiagnostics(string file, int maxErrors = 10_000)
{
    private readonly List<ManifestError> _errors = [];
    private readonly List<ManifestError> _warnings = [];

    public string File { get; } = file;

    public IReadOnlyList<ManifestError> Errors => _errors;

    public IReadOnlyList<ManifestError> Warnings => _warnings;

    /// <summary>Every error found, including those beyond the cap.</summary>
    public int ErrorCount { get; private set; }

    public int WarningCount { get; private set; }

    public void Error(int line, string? field, string message)
    {
        ErrorCount++;
        if (_errors.Count < maxErrors)
        {
            _errors.Add(new ManifestError(File, line, field, message));
        }
    }

    public void Warning(int line, string? field, string message)
    {
        WarningCount++;
        if (_warnings.Count < maxErrors)
        {
            _warnings.Add(new ManifestError(File, line, field, message));
        }
    }
}

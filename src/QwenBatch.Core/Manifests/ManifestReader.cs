using System.Text;
using System.Text.Json;

namespace QwenBatch.Manifests;

/// <summary>
/// Reads a manifest of any format (CSV, JSON, JSONL) through the one validator. <see cref="Read"/> keeps every job in
/// memory (small manifests, tests); <see cref="Open"/> streams jobs for large imports, one pass per enumeration.
/// </summary>
public static class ManifestReader
{
    public static Manifest Read(string path, ManifestOptions? options = null)
    {
        var stream = Open(path, options ?? new ManifestOptions());
        var skipped = new List<SkippedJob>();
        var jobs = stream.Jobs(skipped.Add).ToList();
        return stream.ToManifest(jobs, skipped);
    }

    /// <summary>A single-pass reader of the manifest's jobs; its diagnostics are complete once the jobs are enumerated.</summary>
    public static ManifestStream Open(string path, ManifestOptions options) => new(path, options);
}

/// <summary>
/// One pass over a manifest: <see cref="Jobs"/> yields the valid jobs in file order and reports the refused ones, while
/// <see cref="Diagnostics"/> collects every error and warning with its line.
/// </summary>
public sealed class ManifestStream
{
    private readonly ManifestOptions _options;
    private bool _started;

    internal ManifestStream(string path, ManifestOptions options)
    {
        _options = options;
        Path = System.IO.Path.GetFullPath(path);
        DisplayPath = path;
        Diagnostics = new ManifestDiagnostics(System.IO.Path.GetFileName(path), options.MaxErrors);
    }

    /// <summary>The manifest's absolute path.</summary>
    public string Path { get; }

    /// <summary>The path as the user wrote it.</summary>
    public string DisplayPath { get; }

    /// <summary>The manifest's own name (JSON <c>name</c>), known once the jobs are enumerated.</summary>
    public string? Name { get; private set; }

    public ManifestDiagnostics Diagnostics { get; }

    /// <summary>How many valid jobs the enumeration yielded.</summary>
    public int JobCount { get; private set; }

    /// <summary>The valid jobs, streamed; <paramref name="onSkipped"/> hears of every job that was refused.</summary>
    public IEnumerable<ManifestJob> Jobs(Action<SkippedJob>? onSkipped = null)
    {
        if (_started)
        {
            throw new InvalidOperationException("A manifest stream is read once; open the manifest again for another pass.");
        }

        _started = true;
        return Enumerate(onSkipped);
    }

    public Manifest ToManifest(IReadOnlyList<ManifestJob> jobs, IReadOnlyList<SkippedJob> skipped) =>
        new(Path, Name, jobs, Sorted(Diagnostics.Errors), Sorted(Diagnostics.Warnings)) { Skipped = skipped };

    /// <summary>Errors in file order (a JSON syntax error is found before the jobs above it are checked).</summary>
    public static List<ManifestError> Sorted(IReadOnlyList<ManifestError> errors) => errors.OrderBy(e => e.Line).ToList();

    private IEnumerable<ManifestJob> Enumerate(Action<SkippedJob>? onSkipped)
    {
        if (Rows() is not var (rows, format))
        {
            yield break;
        }

        var builder = new EditBuilder(_options, System.IO.Path.GetDirectoryName(Path)!, Diagnostics);
        foreach (var row in rows)
        {
            var built = builder.Build(row);
            for (var i = 0; i < built.Count; i++)
            {
                var (job, skipped) = built[i];
                if (job is not null)
                {
                    JobCount++;
                    yield return job;
                }
                else if (skipped is not null)
                {
                    onSkipped?.Invoke(skipped);
                }
            }
        }

        if (JobCount == 0 && Diagnostics.ErrorCount == 0)
        {
            Diagnostics.Error(format == ManifestFormat.Csv ? 2 : 1, null, format == ManifestFormat.Csv ? "the manifest has a header but no jobs" : "the manifest has no jobs");
        }
    }

    private (IEnumerable<ManifestRow> Rows, ManifestFormat Format)? Rows()
    {
        if (!File.Exists(Path))
        {
            Diagnostics.Error(0, null, $"the manifest file '{DisplayPath}' does not exist");
            return null;
        }

        try
        {
            var (format, error) = ManifestFormats.Detect(Path);
            if (error is not null)
            {
                Diagnostics.Error(1, null, error);
                return null;
            }

            var rows = format switch
            {
                ManifestFormat.Json => JsonManifestReader.Rows(Path, Diagnostics, name => Name = name, _options.JsonBufferSize),
                ManifestFormat.JsonLines => JsonLinesManifestReader.Rows(Path, Diagnostics),
                _ => CsvManifestReader.Rows(Path, _options, Diagnostics),
            };
            return (rows, format);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Diagnostics.Error(0, null, $"the manifest file '{DisplayPath}' cannot be read: {ex.Message}");
            return null;
        }
    }
}

using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using QwenBatch.Manifests;
using QwenBatch.Outputs;

namespace QwenBatch.Batches;

/// <summary>Turns a manifest's jobs into the batch and jobs to import; jobs are mapped one at a time so imports stream.</summary>
public static class BatchPlanner
{
    /// <param name="manifestPath">The manifest's absolute path.</param>
    /// <param name="manifestName">The manifest's own name (JSON <c>name</c>), or null.</param>
    /// <param name="provider">The batch's provider.</param>
    /// <param name="storageRoot">The output root; the batch folder is <c>&lt;root&gt;/&lt;name&gt;</c>.</param>
    /// <param name="name">The batch name; by default the manifest's name, or its file name without extension.</param>
    public static NewBatch Batch(string manifestPath, string? manifestName, string provider, string storageRoot, string? name = null)
    {
        var batchName = OutputNames.Safe(name ?? manifestName ?? Path.GetFileNameWithoutExtension(manifestPath));
        return new NewBatch(batchName, manifestPath, provider, Path.GetFullPath(Path.Combine(storageRoot, batchName)));
    }

    /// <summary>
    /// The jobs to import for a manifest job; its own provider wins over the batch's. A provider that makes one image
    /// per task (WaveSpeed) gets one job per wanted output, keyed &lt;id&gt;-&lt;k&gt;, so the files are named as a
    /// multi-output job's would be and each job is still exactly one paid request.
    /// </summary>
    public static IEnumerable<NewJob> Jobs(ManifestJob job, string batchProvider)
    {
        var provider = job.Provider ?? batchProvider;
        var parts = job.Spec.N <= Providers.ProviderLimits.For(provider).MaxOutputs
            ? [job]
            : Enumerable.Range(1, job.Spec.N).Select(k => job with { Key = $"{job.Key}-{k}", Spec = job.Spec with { N = 1, Output = SplitOutput(job.Spec.Output, job.Key, k) } });
        return parts.Select(j => new NewJob(j.Key, ContentHash(j, provider), provider, j.Spec));
    }

    /// <summary>
    /// A split job's template names its part: {id} is the manifest's id and {k} the part, as they would be for one job with
    /// n outputs; without {k}, the part's own key (id-k) keeps the names apart.
    /// </summary>
    private static string? SplitOutput(string? template, string id, int k)
    {
        if (string.IsNullOrWhiteSpace(template) || !template.Contains("{k}", StringComparison.OrdinalIgnoreCase))
        {
            return template;
        }

        return template.Replace("{id}", id.Replace('/', '_').Replace('\\', '_'), StringComparison.OrdinalIgnoreCase).Replace("{k}", k.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The whole plan of a materialized manifest (small manifests and tests).</summary>
    public static (NewBatch Batch, IReadOnlyList<NewJob> Jobs) Plan(Manifest manifest, string provider, string storageRoot, string? name = null) =>
        (Batch(manifest.Path, manifest.Name, provider, storageRoot, name), manifest.Jobs.SelectMany(j => Jobs(j, provider)).ToList());

    // One SHA-256 context per thread, reset by each hash: a one-shot hash sets a context up and tears it down every time,
    // a fifth of planning a 100k-row import.
    [ThreadStatic]
    private static IncrementalHash? _sha256;

    /// <summary>
    /// A short hash of what the job asks for, so an edited row is a new job rather than a silent no-op. Stored with every
    /// job and compared when a manifest is imported again: these exact bytes must not change.
    /// </summary>
    private static string ContentHash(ManifestJob job, string provider)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new { job.Key, provider, job.Spec.Prompt, job.Spec.Images, job.Spec.NegativePrompt, job.Spec.Size, job.Spec.N, job.Spec.Seed, job.Spec.PromptExtend, job.Spec.Watermark, job.Spec.OutputFormat, job.Spec.Output });
        var sha256 = _sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha256.AppendData(json);
        Span<byte> hash = stackalloc byte[32];
        sha256.GetHashAndReset(hash);
        return Convert.ToHexStringLower(hash[..8]);
    }
}

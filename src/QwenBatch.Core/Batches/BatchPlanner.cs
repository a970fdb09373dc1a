using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using QwenBatch.Manifests;
using QwenBatch.Outputs;

namespace QwenBatch.Batches;

/// <summary>Turns a valid manifest into the batch and jobs to import.</summary>
public static class BatchPlanner
{
    /// <param name="manifest">A valid manifest.</param>
    /// <param name="provider">The provider every job uses.</param>
    /// <param name="storageRoot">The output root; the batch folder is <c>&lt;root&gt;/&lt;name&gt;</c>.</param>
    /// <param name="name">The batch name; by default the manifest's file name without extension.</param>
    public static (NewBatch Batch, IReadOnlyList<NewJob> Jobs) Plan(Manifest manifest, string provider, string storageRoot, string? name = null)
    {
        var batchName = OutputNames.Safe(name ?? Path.GetFileNameWithoutExtension(manifest.Path));
        var batch = new NewBatch(batchName, manifest.Path, provider, Path.GetFullPath(Path.Combine(storageRoot, batchName)));
        var jobs = manifest.Jobs
            .SelectMany(j => Split(j, provider))
            .Select(j => new NewJob(j.Key, ContentHash(j, provider), provider, j.Spec))
            .ToList();
        return (batch, jobs);
    }

    /// <summary>
    /// A provider that makes one image per task (WaveSpeed) gets one job per wanted output, keyed &lt;id&gt;-&lt;k&gt;, so
    /// the files are named as a multi-output job's would be and each job is still exactly one paid request.
    /// </summary>
    private static IEnumerable<ManifestJob> Split(ManifestJob job, string provider)
    {
        var max = Providers.ProviderLimits.For(provider).MaxOutputs;
        if (job.Spec.N <= max)
        {
            return [job];
        }

        return Enumerable.Range(1, job.Spec.N).Select(k => job with { Key = $"{job.Key}-{k}", Spec = job.Spec with { N = 1 } });
    }

    /// <summary>A short hash of what the job asks for, so an edited row is a new job rather than a silent no-op.</summary>
    private static string ContentHash(ManifestJob job, string provider)
    {
        var json = JsonSerializer.Serialize(new { job.Key, provider, job.Spec.Prompt, job.Spec.Images, job.Spec.NegativePrompt, job.Spec.Size, job.Spec.N, job.Spec.Seed, job.Spec.PromptExtend, job.Spec.Watermark, job.Spec.OutputFormat, job.Spec.Output });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(json)))[..16];
    }
}

using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using QwenBatch.Edits;
using QwenBatch.Manifests;
using QwenBatch.Outputs;
using QwenBatch.Storage;

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
    public static IEnumerable<NewEdit> Jobs(ManifestJob job, string batchProvider)
    {
        var provider = job.Provider ?? batchProvider;
        var parts = job.Parts(batchProvider);
        return parts == 1
            ? [new NewEdit(job.Key, ContentHash(job, provider), provider, job.Spec)]
            : Split(job, parts, provider);
    }

    // Its own method: lambdas capturing job and provider in Jobs made every call allocate their closure, split or not.
    private static IEnumerable<NewEdit> Split(ManifestJob job, int parts, string provider) =>
        Enumerable.Range(1, parts)
            .Select(k => job with { Key = job.PartKey(k), Spec = job.Spec with { N = 1, Output = SplitOutput(job.Spec.Output, job.Key, k) } })
            .Select(j => new NewEdit(j.Key, ContentHash(j, provider), provider, j.Spec));

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
    public static (NewBatch Batch, IReadOnlyList<NewEdit> Jobs) Plan(Manifest manifest, string provider, string storageRoot, string? name = null) =>
        (Batch(manifest.Path, manifest.Name, provider, storageRoot, name), manifest.Jobs.SelectMany(j => Jobs(j, provider)).ToList());

    // One SHA-256 context and one JSON writer per thread, reset by each hash: a one-shot hash sets a context up and tears
    // it down every time, and serializing an anonymous object went through the reflection serializer — together most of
    // the cost of planning a 100k-row import.
    [ThreadStatic]
    private static HashScratch? _scratch;

    /// <summary>
    /// A short hash of what the job asks for, so an edited row is a new job rather than a silent no-op. Stored with every
    /// job and compared when a manifest is imported again: these exact bytes must not change. They are the JSON the
    /// serializer's defaults write for <c>new { Key, provider, Prompt, Images, NegativePrompt, Size, N, Seed,
    /// PromptExtend, Watermark, OutputFormat, Output }</c> (nulls written, the default encoder), written here by hand —
    /// straight into bytes when no text needs escaping (<see cref="PlainJson"/>), through the JSON writer otherwise.
    /// </summary>
    private static string ContentHash(ManifestJob job, string provider)
    {
        var scratch = _scratch ??= new HashScratch();
        var spec = job.Spec;
        if (PlainJson.IsPlain(job.Key) && PlainJson.IsPlain(provider) && PlainJson.IsPlain(spec))
        {
            WritePlain(scratch.StartPlain(), job.Key, provider, spec);
            return scratch.Hash();
        }

        var json = scratch.Start();
        json.WriteStartObject();
        json.WriteString("Key", job.Key);
        json.WriteString("provider", provider);
        json.WriteString("Prompt", spec.Prompt);
        if (spec.Images is { } images)
        {
            json.WriteStartArray("Images");
            foreach (var image in images)
            {
                json.WriteStringValue(image);
            }

            json.WriteEndArray();
        }
        else
        {
            json.WriteNull("Images");
        }

        WriteStringOrNull(json, "NegativePrompt", spec.NegativePrompt);
        WriteStringOrNull(json, "Size", spec.Size);
        json.WriteNumber("N", spec.N);
        if (spec.Seed is { } seed)
        {
            json.WriteNumber("Seed", seed);
        }
        else
        {
            json.WriteNull("Seed");
        }

        WriteBooleanOrNull(json, "PromptExtend", spec.PromptExtend);
        WriteBooleanOrNull(json, "Watermark", spec.Watermark);
        WriteStringOrNull(json, "OutputFormat", spec.OutputFormat);
        WriteStringOrNull(json, "Output", spec.Output);
        json.WriteEndObject();
        return scratch.Hash();
    }

    /// <summary>The same bytes as the writer's, for a job whose text needs no escaping.</summary>
    private static void WritePlain(ArrayBufferWriter<byte> json, string key, string provider, EditSpec spec)
    {
        PlainJson.Property(json, "{\"Key\":"u8, key);
        PlainJson.Property(json, ",\"provider\":"u8, provider);
        PlainJson.Property(json, ",\"Prompt\":"u8, spec.Prompt);
        PlainJson.PropertyOrNull(json, ",\"Images\":"u8, spec.Images);
        PlainJson.PropertyOrNull(json, ",\"NegativePrompt\":"u8, spec.NegativePrompt);
        PlainJson.PropertyOrNull(json, ",\"Size\":"u8, spec.Size);
        PlainJson.Property(json, ",\"N\":"u8, spec.N);
        PlainJson.PropertyOrNull(json, ",\"Seed\":"u8, spec.Seed);
        PlainJson.PropertyOrNull(json, ",\"PromptExtend\":"u8, spec.PromptExtend);
        PlainJson.PropertyOrNull(json, ",\"Watermark\":"u8, spec.Watermark);
        PlainJson.PropertyOrNull(json, ",\"OutputFormat\":"u8, spec.OutputFormat);
        PlainJson.PropertyOrNull(json, ",\"Output\":"u8, spec.Output);
        PlainJson.Raw(json, "}"u8);
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static void WriteBooleanOrNull(Utf8JsonWriter json, string name, bool? value)
    {
        if (value is { } flag)
        {
            json.WriteBoolean(name, flag);
        }
        else
        {
            json.WriteNull(name);
        }
    }

    /// <summary>A thread's buffer, JSON writer and SHA-256 context, reused hash after hash for as long as the thread lives.</summary>
    private sealed class HashScratch : IDisposable
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(1024);
        private readonly Utf8JsonWriter _json;
        private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public HashScratch() => _json = new Utf8JsonWriter(_buffer);

        public Utf8JsonWriter Start()
        {
            _buffer.ResetWrittenCount();
            _json.Reset(_buffer);
            return _json;
        }

        /// <summary>The buffer, empty, for JSON written without the writer (<see cref="PlainJson"/>).</summary>
        public ArrayBufferWriter<byte> StartPlain()
        {
            _buffer.ResetWrittenCount();
            _json.Reset(_buffer);
            return _buffer;
        }

        public string Hash()
        {
            _json.Flush();
            _sha256.AppendData(_buffer.WrittenSpan);
            Span<byte> hash = stackalloc byte[32];
            _sha256.GetHashAndReset(hash);
            return Convert.ToHexStringLower(hash[..8]);
        }

        public void Dispose()
        {
            _json.Dispose();
            _sha256.Dispose();
        }
    }
}

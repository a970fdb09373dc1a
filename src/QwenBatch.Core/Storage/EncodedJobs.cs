using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Storage;

/// <summary>
/// Planned jobs in their compact stored form: chunks of up to <see cref="ChunkSize"/> jobs and about
/// <see cref="MaxChunkBytes"/>, each one JSON array of
/// <c>{"k": key, "h": content hash, "p": provider, "s": spec}</c> in UTF-8 — about a fifth of the memory the same jobs take
/// as objects. An import's validating pass hands its jobs to the store this way — all of them once the pass is over
/// (<see cref="Writer.Complete"/>), or live, chunk by chunk while the pass still reads (<see cref="Live"/>); PostgreSQL
/// stages the chunks as they are (its job_chunks rows), any other store reads them back as jobs.
/// </summary>
public sealed class EncodedJobs : IAsyncEnumerable<NewEdit>
{
    public const int ChunkSize = 1000;

    /// <summary>
    /// A chunk is closed once it holds this many bytes, so that its array stays below the runtime's large-object
    /// threshold (85,000 bytes): large arrays are collected only by full collections, and an import that made a 200 KB
    /// array per 1,000 jobs spent a quarter of its time in them.
    /// </summary>
    public const int MaxChunkBytes = 64 * 1024;

    private readonly IReadOnlyList<(byte[] Json, int Jobs)>? _chunks;
    private readonly Func<CancellationToken, IAsyncEnumerable<(byte[] Json, int Jobs)>>? _live;

    private EncodedJobs(IReadOnlyList<(byte[] Json, int Jobs)> chunks, int count, long bytes)
    {
        _chunks = chunks;
        Count = count;
        Bytes = bytes;
    }

    private EncodedJobs(Func<CancellationToken, IAsyncEnumerable<(byte[] Json, int Jobs)>> live) => _live = live;

    /// <summary>
    /// Jobs still being planned: <paramref name="chunks"/> yields each chunk as it is written and, at its end, throws if
    /// the jobs must not be imported after all (the manifest turned out invalid) — inside the store's transaction, which
    /// then rolls back. Enumerated once.
    /// </summary>
    public static EncodedJobs Live(Func<CancellationToken, IAsyncEnumerable<(byte[] Json, int Jobs)>> chunks) => new(chunks);

    /// <summary>How many jobs; null while they are still being planned.</summary>
    public int? Count { get; }

    /// <summary>The chunks' size in UTF-8 bytes; null while the jobs are still being planned.</summary>
    public long? Bytes { get; }

    /// <summary>The chunks in order, each with how many jobs it holds.</summary>
    public IAsyncEnumerable<(byte[] Json, int Jobs)> ChunksAsync(CancellationToken ct = default) => _live?.Invoke(ct) ?? Kept(_chunks!, ct);

    public async IAsyncEnumerator<NewEdit> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        await foreach (var (chunk, _) in ChunksAsync(cancellationToken))
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var job in Decode(chunk))
            {
                yield return job;
            }
        }
    }

    private static async IAsyncEnumerable<(byte[] Json, int Jobs)> Kept(IReadOnlyList<(byte[] Json, int Jobs)> chunks, [EnumeratorCancellation] CancellationToken ct)
    {
        foreach (var chunk in chunks)
        {
            ct.ThrowIfCancellationRequested();
            yield return chunk;
        }

        await Task.CompletedTask;
    }

    /// <summary>The jobs of one chunk, read back.</summary>
    public static IEnumerable<NewEdit> Decode(byte[] chunk)
    {
        using var document = JsonDocument.Parse(chunk);
        foreach (var job in document.RootElement.EnumerateArray())
        {
            yield return new NewEdit(
                job.GetProperty("k").GetString()!,
                job.GetProperty("h").GetString()!,
                job.GetProperty("p").GetString()!,
                StoreJson.Read<EditSpec>(job.GetProperty("s").GetRawText()));
        }
    }

    /// <summary>
    /// Writes jobs into chunks one at a time and refuses an id named twice, as every store does — unless
    /// <paramref name="keysChecked"/>: a manifest pass whose validator has taken every key these jobs have already refused
    /// each clash, with its line. Completed chunks are kept for <see cref="Complete"/>, or taken as they fill by a caller
    /// that streams them (<see cref="TryTakeChunk"/>).
    /// </summary>
    public sealed class Writer(int chunkSize = ChunkSize, bool keysChecked = false) : IDisposable
    {
        private readonly Queue<(byte[] Json, int Jobs)> _chunks = new();
        private readonly EditKeySet? _keys = keysChecked ? null : new();
        private readonly ArrayBufferWriter<byte> _buffer = new(MaxChunkBytes + 8 * 1024);
        private Utf8JsonWriter? _json;
        private int _inChunk;
        private long _bytes;

        public int Count { get; private set; }

        /// <summary>The bytes of the completed chunks and the open one.</summary>
        public long Bytes => _bytes + _buffer.WrittenCount;

        public void Add(NewEdit job)
        {
            if (_keys is not null && !_keys.Add(job.Key))
            {
                throw new DuplicateJobKeyException($"An import named the job id '{job.Key}' twice; ids must be unique within a batch. Nothing was imported.");
            }

            PlainJson.Raw(_buffer, _inChunk == 0 ? "["u8 : ","u8);
            if (IsPlain(job))
            {
                WritePlain(job);
            }
            else
            {
                // The writer, reset, writes the one object after what the buffer holds.
                _json ??= new Utf8JsonWriter(_buffer);
                _json.Reset(_buffer);
                _json.WriteStartObject();
                _json.WriteString("k", job.Key);
                _json.WriteString("h", job.ContentHash);
                _json.WriteString("p", job.Provider);
                _json.WritePropertyName("s");
                StoreJson.Write(_json, job.Spec);
                _json.WriteEndObject();
                _json.Flush();
            }

            Count++;
            if (++_inChunk == chunkSize || _buffer.WrittenCount >= MaxChunkBytes)
            {
                Flush();
            }
        }

        private static bool IsPlain(NewEdit job)
        {
            return PlainJson.IsPlain(job.Key) && PlainJson.IsPlain(job.ContentHash) && PlainJson.IsPlain(job.Provider)
                && PlainJson.IsPlain(job.Spec) && PlainJson.IsPlain(job.Spec.Variables);
        }

        /// <summary>
        /// The job as <see cref="StoreJson"/> writes its spec (web names, nulls left out, in declaration order), for a job
        /// whose text needs no escaping; a test holds the two to the same bytes.
        /// </summary>
        private void WritePlain(NewEdit job)
        {
            var json = _buffer;
            var spec = job.Spec;
            PlainJson.Property(json, "{\"k\":"u8, job.Key);
            PlainJson.Property(json, ",\"h\":"u8, job.ContentHash);
            PlainJson.Property(json, ",\"p\":"u8, job.Provider);
            PlainJson.Property(json, ",\"s\":{\"prompt\":"u8, spec.Prompt);
            PlainJson.OptionalProperty(json, ",\"images\":"u8, spec.Images);
            PlainJson.OptionalProperty(json, ",\"negativePrompt\":"u8, spec.NegativePrompt);
            PlainJson.OptionalProperty(json, ",\"size\":"u8, spec.Size);
            PlainJson.Property(json, ",\"n\":"u8, spec.N);
            PlainJson.OptionalProperty(json, ",\"seed\":"u8, spec.Seed);
            PlainJson.OptionalProperty(json, ",\"promptExtend\":"u8, spec.PromptExtend);
            PlainJson.OptionalProperty(json, ",\"watermark\":"u8, spec.Watermark);
            PlainJson.OptionalProperty(json, ",\"outputFormat\":"u8, spec.OutputFormat);
            PlainJson.OptionalProperty(json, ",\"output\":"u8, spec.Output);
            PlainJson.OptionalProperty(json, ",\"variables\":"u8, spec.Variables);
            PlainJson.Raw(json, "}}"u8);
        }

        /// <summary>A completed chunk not taken yet, oldest first.</summary>
        public bool TryTakeChunk(out (byte[] Json, int Jobs) chunk) => _chunks.TryDequeue(out chunk);

        /// <summary>Closes the open chunk; the jobs not taken. The writer is spent.</summary>
        public EncodedJobs Complete()
        {
            CloseChunk();
            return new EncodedJobs(_chunks.ToArray(), _chunks.Sum(c => c.Jobs), _chunks.Sum(c => (long)c.Json.Length));
        }

        /// <summary>Closes the open chunk (if any), so that <see cref="TryTakeChunk"/> takes it too: the last jobs of a stream.</summary>
        public void CloseChunk()
        {
            if (_inChunk > 0)
            {
                Flush();
            }
        }

        public void Dispose() => _json?.Dispose();

        private void Flush()
        {
            PlainJson.Raw(_buffer, "]"u8);
            var chunk = _buffer.WrittenSpan.ToArray();
            _bytes += chunk.Length;
            _buffer.ResetWrittenCount();
            _chunks.Enqueue((chunk, _inChunk));
            _inChunk = 0;
        }
    }
}

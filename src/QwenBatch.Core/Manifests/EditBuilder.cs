using System.Globalization;
using QwenBatch.Edits;
using QwenBatch.Providers;

namespace QwenBatch.Manifests;

/// <summary>
/// The one validator and expander behind every format: turns a <see cref="ManifestRow"/> into jobs (one per matrix entry),
/// checking each field against the provider's limits, and reports every problem with the row's line.
/// </summary>
internal sealed class EditBuilder(ManifestOptions options, string baseDir, ManifestDiagnostics diagnostics)
{
    /// <summary>Far beyond what a provider reads (800 tokens); longer is a broken cell, not a prompt.</summary>
    private const int MaxPromptChars = 20_000;

    private const int MaxIdChars = 200;

    private readonly ManifestOptions _options = options;
    private readonly ManifestDiagnostics _diagnostics = diagnostics;
    private readonly EditKeySet _seen = new();
    private readonly InputImages _images = new(baseDir, options.InputRoot, options.MatchUploadedNames);

    /// <summary>Columns that --map turned into provider fields: not variables.</summary>
    private readonly HashSet<string> _mapped = new(options.FieldMap.Values, StringComparer.OrdinalIgnoreCase);

    /// <summary>A row without a matrix is one job.</summary>
    private static readonly List<Dictionary<string, string>> NoMatrix = [null!];

    private readonly List<(ManifestJob? Job, SkippedJob? Skipped)> _built = [];

    /// <summary>
    /// The row's jobs (one per matrix entry), each valid or refused, in order. The list is this builder's and is reused
    /// by the next call: read it before building the next row.
    /// </summary>
    public IReadOnlyList<(ManifestJob? Job, SkippedJob? Skipped)> Build(ManifestRow row)
    {
        _built.Clear();
        if (row.ShapeErrors.Count > 0)
        {
            var start = _diagnostics.Errors.Count;
            foreach (var (field, message) in row.ShapeErrors)
            {
                _diagnostics.Error(row.Line, field, message);
            }

            _built.Add((null, new SkippedJob(row.Line, Raw(row, ManifestFields.Id) ?? $"row-{row.Line}", Since(start)) { Cells = Copy(row.Cells) }));
            return _built;
        }

        var entries = row.Matrix ?? NoMatrix;
        for (var index = 0; index < entries.Count; index++)
        {
            var entry = entries[index];
            var cells = entry is null ? row.Cells : Merge(row.Cells, entry);
            var start = _diagnostics.Errors.Count;
            var before = _diagnostics.ErrorCount;
            var job = new RowJob(this, row, cells, entry is null || entries.Count == 1 ? null : index + 1).Build();
            if (_diagnostics.ErrorCount > before || job is null)
            {
                _built.Add((null, new SkippedJob(row.Line, job?.Key ?? Raw(row, ManifestFields.Id) ?? $"row-{row.Line}", Since(start)) { Cells = Copy(cells) }));
            }
            else if (Clash(job) is { } clash)
            {
                _diagnostics.Error(row.Line, ManifestFields.Id, clash);
                _built.Add((null, new SkippedJob(row.Line, job.Key, Since(start)) { Cells = Copy(cells) }));
            }
            else
            {
                _built.Add((job, null));
            }
        }

        return _built;
    }

    /// <summary>
    /// Takes the job's keys, or says why it cannot have them: its id, and — where the provider makes one image per task —
    /// the key of each output's job (id-1 … id-n, <see cref="ManifestJob.Parts"/>), so that no two jobs of the batch share a
    /// key in the store and a clash is reported with its line rather than refused by the import. A refused job takes none.
    /// Ids are kept with their line, output keys with the line negated.
    /// </summary>
    private string? Clash(ManifestJob job)
    {
        var parts = job.Parts(_options.Provider);
        if (parts == 1)
        {
            return _seen.TryAdd(job.Key, job.Line, out var first) ? null : Used(job.Key, first);
        }

        if (_seen.Contains(job.Key, out var number))
        {
            return Used(job.Key, number);
        }

        var keys = new string[parts];
        for (var k = 0; k < parts; k++)
        {
            keys[k] = job.PartKey(k + 1);
            if (_seen.Contains(keys[k], out number))
            {
                var provider = ProviderLimits.For(job.Provider ?? _options.Provider).Provider;
                return $"with n={parts} on {provider} (one image per task) the row is {parts} jobs, '{keys[0]}' to '{job.PartKey(parts)}'; {Used(keys[k], number)}";
            }
        }

        _seen.TryAdd(job.Key, job.Line, out _);
        foreach (var key in keys)
        {
            _seen.TryAdd(key, -job.Line, out _);
        }

        return null;
    }

    private static string Used(string key, int number) => number > 0
        ? $"'{key}' is already used on line {number}; ids must be unique"
        : $"'{key}' is already the job of one of line {-number}'s outputs (its provider makes one image per task, so each output is a job of its own, named <id>-<k>); ids must be unique";

    private List<ManifestError> Since(int start) => _diagnostics.Errors.Skip(start).ToList();

    private static Dictionary<string, string> Merge(Dictionary<string, string> cells, Dictionary<string, string> entry)
    {
        var merged = new Dictionary<string, string>(cells, StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in entry)
        {
            merged[name] = value;
        }

        return merged;
    }

    /// <summary>A refused job keeps its cells, which the reader may reuse for its next row.</summary>
    private static Dictionary<string, string> Copy(Dictionary<string, string> cells) => new(cells, StringComparer.OrdinalIgnoreCase);

    private static string? Raw(ManifestRow row, string field) => row.Cells.TryGetValue(field, out var v) && v.Length > 0 ? v : null;

    /// <summary>One job being read: its merged cells and where to report.</summary>
    private sealed class RowJob(EditBuilder owner, ManifestRow row, Dictionary<string, string> cells, int? matrixIndex)
    {
        private readonly ManifestOptions _options = owner._options;
        private readonly ManifestDiagnostics _diagnostics = owner._diagnostics;
        private List<string>? _unknown;

        public ManifestJob? Build()
        {
            var provider = Provider();
            var limits = ProviderLimits.For(provider ?? _options.Provider);

            // An id column left empty is an error; no id column at all means ids from line numbers.
            var rawId = cells.TryGetValue(Column(ManifestFields.Id), out var cell) ? cell : null;
            var id = rawId is null ? $"row-{row.Line}" : Template.Apply(rawId, cells, ref _unknown);
            if (matrixIndex is { } i && !(rawId ?? "").Contains('{', StringComparison.Ordinal))
            {
                // A fanned-out job without {variables} in its id still needs a unique one.
                id = string.Create(CultureInfo.InvariantCulture, $"{id}-{i}");
            }

            if (id.Length == 0 || id.Length > MaxIdChars)
            {
                Error(ManifestFields.Id, id.Length == 0 ? "is empty; expected a unique job id" : $"is {id.Length} characters; expected at most {MaxIdChars}");
            }

            var prompt = Prompt();
            var negative = Fill(ManifestFields.NegativePrompt, Get(ManifestFields.NegativePrompt));
            if (negative is { Length: > ManifestFields.MaxNegativePromptChars })
            {
                Error(ManifestFields.NegativePrompt, $"is {negative.Length} characters; expected at most {ManifestFields.MaxNegativePromptChars}");
            }

            var images = Images();
            var size = Size(limits);
            var n = Int(ManifestFields.N, 1, ManifestFields.MaxN) ?? 1;
            var seed = Seed(limits);
            var promptExtend = Bool(ManifestFields.PromptExtend);
            var watermark = Bool(ManifestFields.Watermark);
            var format = OutputFormat();
            NotTakenBy(limits, ManifestFields.PromptExtend, promptExtend is not null && !limits.TakesPromptExtend);
            NotTakenBy(limits, ManifestFields.Watermark, watermark is not null && !limits.TakesWatermark);
            NotTakenBy(limits, ManifestFields.NegativePrompt, negative is not null && !limits.TakesNegativePrompt);
            var output = Get(ManifestFields.Output) is { } rawOutput ? Template.Apply(rawOutput, OutputValues(), ref _unknown) : null;
            if (output is { Length: > MaxIdChars })
            {
                Error(ManifestFields.Output, $"is {output.Length} characters; expected a file name template of at most {MaxIdChars}");
            }

            foreach (var name in _unknown ?? [])
            {
                Warning(null, $"'{{{name}}}' is not a column or matrix variable; it is left as written");
            }

            if (prompt is null)
            {
                return null;
            }

            return new ManifestJob(row.Line, id, new EditSpec
            {
                Prompt = prompt,
                Images = images,
                NegativePrompt = negative,
                Size = size,
                N = n,
                Seed = seed,
                PromptExtend = promptExtend,
                Watermark = watermark,
                OutputFormat = format,
                Output = output,
                Variables = Variables(),
            }, provider);
        }

        private string? Prompt()
        {
            var prompt = _options.PromptTemplate is { } template
                ? Template.Apply(template, cells, ref _unknown)
                : Fill(ManifestFields.Prompt, Get(ManifestFields.Prompt));
            if (string.IsNullOrWhiteSpace(prompt))
            {
                Error(ManifestFields.Prompt, "is empty; expected the edit instruction");
                return null;
            }

            if (prompt.Length > MaxPromptChars)
            {
                Error(ManifestFields.Prompt, $"is {prompt.Length} characters; expected at most {MaxPromptChars} (the provider reads {ManifestFields.MaxPromptTokens} tokens)");
                return null;
            }

            if (EstimateTokens(prompt) is var tokens and > ManifestFields.MaxPromptTokens)
            {
                Warning(ManifestFields.Prompt, $"is about {tokens} tokens; the provider truncates prompts beyond {ManifestFields.MaxPromptTokens} tokens");
            }

            return prompt;
        }

        /// <summary>A rough count: about four characters per token for Latin text, one per character for CJK and others.</summary>
        private static int EstimateTokens(string text)
        {
            if (System.Text.Ascii.IsValid(text))
            {
                return (text.Length + 3) / 4;
            }

            var ascii = 0;
            var other = 0;
            foreach (var c in text)
            {
                if (char.IsAscii(c))
                {
                    ascii++;
                }
                else
                {
                    other++;
                }
            }

            return (ascii + 3) / 4 + other;
        }

        private List<string> Images()
        {
            var images = new List<string>(1);
            if (row.ImageList is { } list && !_options.FieldMap.ContainsKey(ManifestFields.Images))
            {
                images.AddRange(list.Where(i => i.Length > 0));
            }
            else if (Get(ManifestFields.Images) is { } joined)
            {
                if (joined.Contains('|', StringComparison.Ordinal))
                {
                    images.AddRange(joined.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
                }
                else
                {
                    images.Add(joined);
                }
            }

            foreach (var column in ManifestFields.SingleImages)
            {
                if (Get(column) is { } single)
                {
                    images.Add(single);
                }
            }

            if (images.Count is 0 or > ManifestFields.MaxImages)
            {
                Error(ManifestFields.Images, $"has {images.Count} image(s); expected 1 to {ManifestFields.MaxImages}, separated by '|'");
                return images;
            }

            // Each reference is replaced by what is stored for it (an absolute path for a local file).
            for (var i = 0; i < images.Count; i++)
            {
                var check = owner._images.Inspect(images[i]);
                if (check.Error is { } error)
                {
                    Error(ManifestFields.Images, error);
                }

                if (check.Warning is { } warning)
                {
                    Warning(ManifestFields.Images, warning);
                }

                images[i] = check.Value;
            }

            return images;
        }

        private string? Size(ProviderLimits limits)
        {
            if (Get(ManifestFields.Size) is not { } size)
            {
                return null;
            }

            var parts = size.Split('*', 'x', 'X', '×');
            if (parts.Length != 2
                || !int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var w)
                || !int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var h))
            {
                Error(ManifestFields.Size, $"'{Short(size)}' is not a size; expected WIDTH*HEIGHT such as 1024*1024");
                return null;
            }

            if (w < limits.MinSide || w > limits.MaxSide || h < limits.MinSide || h > limits.MaxSide)
            {
                Error(ManifestFields.Size, string.Create(CultureInfo.InvariantCulture,
                    $"'{size}' is outside {limits.Provider}'s range; expected each side from {limits.MinSide} to {limits.MaxSide} pixels"));
                return null;
            }

            var (aw, ah) = (Round(w, limits.SizeMultiple), Round(h, limits.SizeMultiple));
            if ((aw, ah) != (w, h))
            {
                Warning(ManifestFields.Size, string.Create(CultureInfo.InvariantCulture,
                    $"'{size}' is adjusted to {aw}*{ah}; {limits.Provider} uses multiples of {limits.SizeMultiple}"));
            }

            return string.Create(CultureInfo.InvariantCulture, $"{aw}*{ah}");
        }

        private static int Round(int side, int multiple) => multiple <= 1 ? side : (int)Math.Round(side / (double)multiple, MidpointRounding.AwayFromZero) * multiple;

        private int? Int(string field, int min, int max)
        {
            if (Get(field) is not { } raw)
            {
                return null;
            }

            if (int.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
            {
                return value;
            }

            Error(field, string.Create(CultureInfo.InvariantCulture, $"'{Short(raw)}' is not allowed; expected a whole number from {min} to {max}"));
            return null;
        }

        private long? Seed(ProviderLimits limits)
        {
            if (Get(ManifestFields.Seed) is not { } raw)
            {
                return null;
            }

            if (long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seed) && seed >= limits.MinSeed && seed <= ManifestFields.MaxSeed)
            {
                return seed;
            }

            Error(ManifestFields.Seed, string.Create(CultureInfo.InvariantCulture,
                $"'{Short(raw)}' is not allowed; expected a whole number from {limits.MinSeed} to {ManifestFields.MaxSeed}"));
            return null;
        }

        private bool? Bool(string field)
        {
            if (Get(field) is not { } raw)
            {
                return null;
            }

            if (raw is "1" || raw.Equals("true", StringComparison.OrdinalIgnoreCase) || raw.Equals("yes", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }

            if (raw is "0" || raw.Equals("false", StringComparison.OrdinalIgnoreCase) || raw.Equals("no", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }

            Error(field, $"'{Short(raw)}' is not a boolean; expected true/false, 1/0 or yes/no");
            return null;
        }

        private string? OutputFormat()
        {
            if (Get(ManifestFields.OutputFormat) is not { } raw)
            {
                return null;
            }

            var format = raw.ToLowerInvariant();
            if (ManifestFields.OutputFormats.Contains(format))
            {
                return format;
            }

            Error(ManifestFields.OutputFormat, $"'{Short(raw)}' is not an output format; expected {string.Join(", ", ManifestFields.OutputFormats)}");
            return null;
        }

        private string? Provider()
        {
            if (Get(ManifestFields.Provider) is not { } raw)
            {
                return null;
            }

            var provider = raw.ToLowerInvariant();
            if (ProviderNames.All.Contains(provider))
            {
                return provider;
            }

            Error(ManifestFields.Provider, $"'{Short(raw)}' is not a provider; expected {string.Join(", ", ProviderNames.All)}");
            return null;
        }

        private Dictionary<string, string> Variables()
        {
            var variables = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (name, value) in cells)
            {
                if (!ManifestFields.Known.Contains(name) && (owner._mapped.Count == 0 || !owner._mapped.Contains(name)))
                {
                    variables[name] = value;
                }
            }

            return variables;
        }

        /// <summary>The row's cells, with {id}, {k} and {ext} kept as written: they are filled when each file is written.</summary>
        private Dictionary<string, string> OutputValues()
        {
            var values = new Dictionary<string, string>(cells, StringComparer.OrdinalIgnoreCase);
            foreach (var name in Outputs.OutputNames.Reserved)
            {
                values[name] = "{" + name + "}";
            }

            return values;
        }

        private string? Fill(string field, string? text)
        {
            if (text is null)
            {
                return null;
            }

            var filled = Template.Apply(text, cells, ref _unknown);
            return filled.Length == 0 && field != ManifestFields.Id ? null : filled;
        }

        private string? Get(string field) => cells.TryGetValue(Column(field), out var value) && value.Length > 0 ? value : null;

        private string Column(string field) => _options.FieldMap.Count > 0 && _options.FieldMap.TryGetValue(field, out var mapped) ? mapped : field;

        private static string Short(string text) => text.Length <= 40 ? text : text[..37] + "...";

        /// <summary>A field the provider's API does not have: its submit would be refused, so the row is refused now.</summary>
        private void NotTakenBy(ProviderLimits limits, string field, bool given)
        {
            if (given)
            {
                Error(field, $"is not taken by {limits.Provider}; remove it for this provider");
            }
        }

        private void Error(string field, string message) => _diagnostics.Error(row.Line, field, message);

        private void Warning(string? field, string message) => _diagnostics.Warning(row.Line, field, message);
    }
}

using System.Text;
using QwenBatch.Batches;
using QwenBatch.Core.Tests.Manifests;
using QwenBatch.Edits;
using QwenBatch.Manifests;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.Batches;

/// <summary>What an import plans before the store sees it: content hashes, the encoded jobs it keeps, and its memory bound.</summary>
public sealed class ImportPlanningTests : IDisposable
{
    private readonly ManifestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void ContentHash_KnownJobs_AreTheHashesStoredByEarlierVersions()
    {
        // Stored with every job and compared on the next import of the manifest: a different hash for the same row would
        // make every job of every existing batch look changed (and be superseded). These values are pinned on purpose.
        var product = new ManifestJob(2, "product-000001", new EditSpec
        {
            Prompt = "White studio background, keep the product unchanged",
            Images = ["https://cdn.example.com/p/1.jpg", "shots/side.png"],
            NegativePrompt = "blur",
            Size = "1024*1024",
            N = 2,
            Seed = 42,
            PromptExtend = false,
            OutputFormat = "png",
            Output = "{id}-{k}",
            Variables = new Dictionary<string, string> { ["sku"] = "SKU-1" },
        });
        var banner = new ManifestJob(3, "banner-de-DE", new EditSpec { Prompt = "Übersetze: \"Sale\" → <b>", Images = ["data:image/png;base64,AAAA"] });

        BatchPlanner.Jobs(product, "odirouter").Single().ContentHash.ShouldBe("559ec7257d9c373f");
        BatchPlanner.Jobs(banner, "wavespeed").Single().ContentHash.ShouldBe("4440be853120bc60");
    }

    [Fact]
    public void ContentHash_AnyJob_IsTheHashOfWhatTheSerializerWritesForIt()
    {
        // The hash's JSON is written by hand for speed; it must stay byte for byte what the serializer's defaults write
        // for the anonymous object earlier versions hashed, whatever the text (escapes, non-ASCII, surrogate pairs) and
        // whichever fields are absent.
        var random = new Random(20261121);
        for (var i = 0; i < 500; i++)
        {
            var spec = RandomSpec(random);
            var job = new ManifestJob(i + 2, Text(random, 1), spec);
            var provider = spec.N == 1 && random.Next(2) == 0 ? "wavespeed" : "odirouter"; // WaveSpeed splits n > 1 into jobs
            var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new { job.Key, provider, spec.Prompt, spec.Images, spec.NegativePrompt, spec.Size, spec.N, spec.Seed, spec.PromptExtend, spec.Watermark, spec.OutputFormat, spec.Output });
            var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(json))[..16];

            BatchPlanner.Jobs(job, provider).Single().ContentHash.ShouldBe(expected, $"job {i}: {Encoding.UTF8.GetString(json)}");
        }
    }

    [Fact]
    public void ContentHash_PlainTextJobs_IsTheHashOfWhatTheSerializerWritesForIt()
    {
        // Most jobs' text needs no escaping, and their hash's JSON is written straight into bytes: the same check as above,
        // on jobs made of every character that path takes (PlainJson), and on jobs with one character it must not take in
        // one of their texts (each text and each such character in turn).
        var random = new Random(20261122);
        for (var i = 0; i < 500; i++)
        {
            var spec = RandomSpec(random, PlainText);
            var key = PlainText(random, 1);
            if (i % 5 == 0)
            {
                spec = WithOneOutsidePlain(spec, i / 5);
            }

            if (i % 35 == 10)
            {
                key += OutsidePlain[i / 35 % OutsidePlain.Length];
            }

            var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new { Key = key, provider = "odirouter", spec.Prompt, spec.Images, spec.NegativePrompt, spec.Size, spec.N, spec.Seed, spec.PromptExtend, spec.Watermark, spec.OutputFormat, spec.Output });
            var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(json))[..16];

            BatchPlanner.Jobs(new ManifestJob(i + 2, key, spec), "odirouter").Single().ContentHash.ShouldBe(expected, $"job {i}: {Encoding.UTF8.GetString(json)}");
        }
    }

    [Fact]
    public void EncodedJobs_AnyJob_SpecIsWhatStoreJsonWrites()
    {
        // Jobs whose text needs no escaping are encoded straight into bytes; every job must read back as the same key, hash,
        // provider and spec, and its spec must be the very bytes StoreJson writes (what the server stores as it is).
        var random = new Random(20261123);
        var jobs = Enumerable.Range(0, 600).Select(i =>
        {
            var spec = RandomSpec(random, i % 3 == 0 ? Text : PlainText);
            spec = i % 5 == 1 ? WithOneOutsidePlain(spec, i / 5) : spec;
            return new NewEdit(i % 35 == 3 ? $"job-{i}{OutsidePlain[i / 35 % OutsidePlain.Length]}" : $"job-{i}", Convert.ToHexStringLower(BitConverter.GetBytes(random.NextInt64())), i % 2 == 0 ? "odirouter" : "wavespeed", i % 7 == 0 ? spec with { Variables = new Dictionary<string, string> { [Text(random, 1)] = "x" } } : spec);
        }).ToList();
        using var writer = new EncodedJobs.Writer(chunkSize: 50);
        jobs.ForEach(writer.Add);

        var encoded = writer.Complete();

        var read = new List<(string Key, string Hash, string Provider, string Spec)>();
        foreach (var (chunk, _) in encoded.ChunksAsync().ToBlockingEnumerable())
        {
            using var document = System.Text.Json.JsonDocument.Parse(chunk);
            read.AddRange(document.RootElement.EnumerateArray().Select(j => (j.GetProperty("k").GetString()!, j.GetProperty("h").GetString()!, j.GetProperty("p").GetString()!, j.GetProperty("s").GetRawText())));
        }

        read.ShouldBe(jobs.Select(j => (j.Key, j.ContentHash, j.Provider, StoreJson.Write(j.Spec))));
    }

    [Fact]
    public void StoreJson_Spec_IsWhatTheStoreOptionsWriteByReflection()
    {
        // Specs are written by generated code; the stored JSON must be the same as the store's options write for any other type.
        var options = new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        };
        var random = new Random(7);
        for (var i = 0; i < 500; i++)
        {
            var spec = RandomSpec(random);

            StoreJson.Write(spec).ShouldBe(System.Text.Json.JsonSerializer.Serialize(spec, options));
            StoreJson.Read<EditSpec>(StoreJson.Write(spec)).ShouldBeEquivalentTo(spec);
        }
    }

    private static EditSpec RandomSpec(Random random) => RandomSpec(random, Text);

    private static EditSpec RandomSpec(Random random, Func<Random, int, string> text) => new()
    {
        Prompt = text(random, 1),
        Images = Enumerable.Range(0, random.Next(0, 4)).Select(_ => text(random, 1)).ToList(),
        NegativePrompt = Maybe(random, text(random, 0)),
        Size = Maybe(random, $"{random.Next(512, 2049)}*{random.Next(512, 2049)}"),
        N = random.Next(1, 7),
        Seed = random.Next(3) == 0 ? null : random.NextInt64(-1, 2147483648),
        PromptExtend = random.Next(3) switch { 0 => null, 1 => true, _ => false },
        Watermark = random.Next(3) switch { 0 => null, 1 => true, _ => false },
        OutputFormat = Maybe(random, "webp"),
        Output = Maybe(random, "{id}-{k}/" + text(random, 0)),
        Variables = Enumerable.Range(0, random.Next(3)).ToDictionary(k => $"v{k}", _ => text(random, 0)),
    };

    /// <summary>Every printable ASCII character the default encoder leaves as it is.</summary>
    private static readonly char[] Plain = Enumerable.Range(0x20, 0x5F).Select(c => (char)c).Where(c => !"\"\\<>&'+`".Contains(c, StringComparison.Ordinal)).ToArray();

    /// <summary>Characters just outside that set: the ones it leaves out, DEL, a control and the first non-ASCII one.</summary>
    private static readonly string[] OutsidePlain = ["\"", "\\", "<", ">", "&", "'", "+", "`", "\u007f", "\u001f", "\u0080"];

    /// <summary>
    /// The spec with one character outside the plain set in one of its texts: each text in turn, each character in turn,
    /// so that a text the plain path forgot to check would be written unescaped and fail the comparison.
    /// </summary>
    private static EditSpec WithOneOutsidePlain(EditSpec spec, int n)
    {
        var c = OutsidePlain[n % OutsidePlain.Length];
        return (n / OutsidePlain.Length % 7) switch
        {
            0 => spec with { Prompt = spec.Prompt + c },
            1 => spec with { Images = [.. spec.Images, "image" + c] },
            2 => spec with { NegativePrompt = spec.NegativePrompt + c },
            3 => spec with { Size = spec.Size + c },
            4 => spec with { OutputFormat = spec.OutputFormat + c },
            5 => spec with { Output = spec.Output + c },
            _ => spec with { Variables = new Dictionary<string, string>(spec.Variables) { ["v" + c] = c } },
        };
    }

    private static string PlainText(Random random, int minLength) =>
        new(Enumerable.Range(0, random.Next(minLength, 40)).Select(_ => Plain[random.Next(Plain.Length)]).ToArray());

    private static string? Maybe(Random random, string value) => random.Next(2) == 0 ? null : value;

    /// <summary>Text from a pool of troublesome characters: quotes, escapes, HTML, controls, accents, CJK and an emoji.</summary>
    private static string Text(Random random, int minLength)
    {
        string[] pool = ["a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "'", "+", "`", "\n", "\t", "\u0001", "é", "ß", "→", "日本", "😀", "\u2028", "{locale}", "|"];
        var builder = new StringBuilder();
        var length = random.Next(minLength, 12);
        for (var i = 0; i < length; i++)
        {
            builder.Append(pool[random.Next(pool.Length)]);
        }

        return builder.ToString();
    }

    [Fact]
    public async Task EncodedJobs_Written_ReadBackAsTheSameJobsInChunks()
    {
        var jobs = Enumerable.Range(1, 5).Select(i => new NewEdit($"row-{i}", $"h{i}", "odirouter", new EditSpec
        {
            Prompt = $"prompt \"{i}\" ünïcode",
            Images = [$"https://x.example/{i}.png"],
            Seed = i,
            Variables = new Dictionary<string, string> { ["sku"] = $"S{i}" },
        })).ToList();
        using var writer = new EncodedJobs.Writer(chunkSize: 2);
        jobs.ForEach(writer.Add);

        var encoded = writer.Complete();

        encoded.Count.ShouldBe(5);
        var chunks = await encoded.ChunksAsync().ToListAsync();
        chunks.Select(c => c.Jobs).ShouldBe([2, 2, 1]);
        encoded.Bytes.ShouldBe(chunks.Sum(c => (long)c.Json.Length));
        var read = new List<NewEdit>();
        await foreach (var job in encoded)
        {
            read.Add(job);
        }

        read.Select(j => (j.Key, j.ContentHash, j.Provider, StoreJson.Write(j.Spec)))
            .ShouldBe(jobs.Select(j => (j.Key, j.ContentHash, j.Provider, StoreJson.Write(j.Spec))));
    }

    [Fact]
    public async Task EncodedJobsWriter_LargeJobs_ChunksStaySmallerThanTheLargeObjectThreshold()
    {
        using var writer = new EncodedJobs.Writer();
        for (var i = 0; i < 300; i++)
        {
            writer.Add(new NewEdit($"row-{i}", "h", "odirouter", new EditSpec { Prompt = new string('p', 1_000), Images = ["https://x.example/a.png"] }));
        }

        var chunks = await writer.Complete().ChunksAsync().ToListAsync();

        chunks.Sum(c => c.Jobs).ShouldBe(300);
        chunks.Count.ShouldBeGreaterThan(1);
        chunks.ShouldAllBe(c => c.Json.Length < 85_000);
    }

    [Fact]
    public void EncodedJobsWriter_IdNamedTwice_IsRefused()
    {
        using var writer = new EncodedJobs.Writer();
        writer.Add(new NewEdit("a", "h1", "odirouter", new EditSpec { Prompt = "p", Images = ["https://x.example/a.png"] }));

        Should.Throw<DuplicateJobKeyException>(() => writer.Add(new NewEdit("a", "h2", "odirouter", new EditSpec { Prompt = "q", Images = ["https://x.example/a.png"] })));
    }

    [Fact]
    public async Task CheckAndPlanAsync_WithinTheBound_KeepsEveryValidJobInManifestOrder()
    {
        var path = _folder.Write("products.csv", Csv(2_500));

        await using var check = await ManifestImporter.CheckAndPlanAsync(path, new ManifestOptions { Provider = "odirouter" }, "odirouter");

        check.Stream.Diagnostics.ErrorCount.ShouldBe(0);
        check.Planned.ShouldNotBeNull();
        check.Planned.Count.ShouldBe(2_500);
        var keys = new List<string>();
        await foreach (var job in check.JobsToImport(CancellationToken.None))
        {
            keys.Add(job.Key);
        }

        keys.ShouldBe(Enumerable.Range(1, 2_500).Select(i => $"product-{i:D5}"));
    }

    [Fact]
    public async Task CheckAndPlanAsync_PastTheBound_DropsTheKeptJobsAndTheImportReadsAgain()
    {
        var path = _folder.Write("products.csv", Csv(2_500));

        await using var check = await ManifestImporter.CheckAndPlanAsync(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", maxBufferedBytes: 50_000);

        check.Planned.ShouldBeNull();
        var count = 0;
        await foreach (var job in check.JobsToImport(CancellationToken.None))
        {
            count++;
        }

        count.ShouldBe(2_500);
    }

    [Fact]
    public async Task StartLive_ValidManifest_JobsComeInManifestOrderWhileThePassReads()
    {
        var path = _folder.Write("products.csv", Csv(12_500));

        await using var pass = ManifestPass.StartLive(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", skipInvalid: false);
        await pass.Started;
        var keys = new List<string>();
        await foreach (var job in pass.Planned!)
        {
            keys.Add(job.Key);
        }

        keys.ShouldBe(Enumerable.Range(1, 12_500).Select(i => $"product-{i:D5}"));
        pass.Completion.IsCompletedSuccessfully.ShouldBeTrue();
        pass.Stream.Diagnostics.ErrorCount.ShouldBe(0);
    }

    [Fact]
    public async Task StartLive_PlannerBehind_TheReadingThreadPlansTooAndTheJobsKeepTheirOrder()
    {
        // Nobody takes the chunks at first, so the planning thread waits with its hand-off full: the reading thread must
        // plan the next jobs itself (splitting each in two for WaveSpeed), and hand them on behind the earlier ones.
        var csv = new StringBuilder("id,prompt,images,n\n");
        for (var i = 1; i <= 30_000; i++)
        {
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"product-{i:D5},\"White background, item {i}\",https://cdn.example.com/{i}.jpg,2\n");
        }

        var path = _folder.Write("products.csv", csv.ToString());

        await using var pass = ManifestPass.StartLive(path, new ManifestOptions { Provider = "wavespeed" }, "wavespeed", skipInvalid: false);
        SpinWait.SpinUntil(() => pass.PlannedWhileReading > 0, TimeSpan.FromMinutes(2)).ShouldBeTrue();
        var keys = new List<string>();
        await foreach (var job in pass.Planned!)
        {
            keys.Add(job.Key);
        }

        var expected = Enumerable.Range(1, 30_000).SelectMany(i => new[] { $"product-{i:D5}-1", $"product-{i:D5}-2" });
        keys.ShouldBe(expected);
        pass.Stream.Diagnostics.ErrorCount.ShouldBe(0);
    }

    [Fact]
    public async Task StartLive_ErrorOnTheLastRow_JobsEndByRefusingTheImport()
    {
        var path = _folder.Write("products.csv", Csv(2_500) + "product-bad,,https://cdn.example.com/bad.jpg,SKU-bad\n");

        await using var pass = ManifestPass.StartLive(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", skipInvalid: false);
        var taken = 0;
        await Should.ThrowAsync<ManifestInvalidException>(async () =>
        {
            await foreach (var _ in pass.Planned!)
            {
                taken++;
            }
        });

        taken.ShouldBeLessThanOrEqualTo(2_500);
        pass.Stream.Diagnostics.Errors.ShouldHaveSingleItem().ToString().ShouldBe("products.csv:2502: prompt: is empty; expected the edit instruction");
    }

    [Fact]
    public async Task StartLive_ErrorOnTheLastRowWithSkipInvalid_JobsAreTheValidOnes()
    {
        var path = _folder.Write("products.csv", Csv(2_500) + "product-bad,,https://cdn.example.com/bad.jpg,SKU-bad\n");
        var skipped = new List<SkippedJob>();

        await using var pass = ManifestPass.StartLive(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", skipInvalid: true, skipped.Add);
        var count = 0;
        await foreach (var _ in pass.Planned!)
        {
            count++;
        }

        count.ShouldBe(2_500);
        skipped.ShouldHaveSingleItem().Line.ShouldBe(2_502);
    }

    [Fact]
    public async Task StartLive_FewButLargeJobs_StartsOnceTheUntakenChunksFillUp()
    {
        // 300 jobs of 5,000-character prompts make more 64 KB chunks than the pass hands on untaken, long before 1,000 jobs:
        // the import must be told to start, or the pass and the import would wait for each other.
        var prompt = new string('p', 5_000);
        var csv = new StringBuilder("id,prompt,images\n");
        for (var i = 1; i <= 300; i++)
        {
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"big-{i},{prompt},https://cdn.example.com/{i}.jpg\n");
        }

        var path = _folder.Write("big.csv", csv.ToString());

        await using var pass = ManifestPass.StartLive(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", skipInvalid: false);
        await pass.Started.WaitAsync(TimeSpan.FromMinutes(2));
        var count = 0;
        await foreach (var _ in pass.Planned!)
        {
            count++;
        }

        count.ShouldBe(300);
    }

    [Fact]
    public async Task StartLive_NobodyTakesTheJobs_DisposeStopsThePass()
    {
        // More chunks than the pass hands on untaken: the planner waits for an import that never comes.
        var path = _folder.Write("products.csv", Csv(30_000));

        var pass = ManifestPass.StartLive(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", skipInvalid: false);
        await pass.Started;
        await pass.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromMinutes(2));

        pass.Completion.IsCompleted.ShouldBeTrue();
    }

    private static string Csv(int rows)
    {
        var csv = new StringBuilder("id,prompt,images,sku\n");
        for (var i = 1; i <= rows; i++)
        {
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"product-{i:D5},\"White background, item {i}\",https://cdn.example.com/{i}.jpg,SKU-{i}\n");
        }

        return csv.ToString();
    }
}

using System.Text;
using QwenBatch.Batches;
using QwenBatch.Core.Tests.Manifests;
using QwenBatch.Jobs;
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
        var product = new ManifestJob(2, "product-000001", new JobSpec
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
        var banner = new ManifestJob(3, "banner-de-DE", new JobSpec { Prompt = "Übersetze: \"Sale\" → <b>", Images = ["data:image/png;base64,AAAA"] });

        BatchPlanner.Jobs(product, "odirouter").Single().ContentHash.ShouldBe("559ec7257d9c373f");
        BatchPlanner.Jobs(banner, "wavespeed").Single().ContentHash.ShouldBe("4440be853120bc60");
    }

    [Fact]
    public async Task EncodedJobs_Written_ReadBackAsTheSameJobsInChunks()
    {
        var jobs = Enumerable.Range(1, 5).Select(i => new NewJob($"row-{i}", $"h{i}", "odirouter", new JobSpec
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
        encoded.Chunks.Select(c => c.Jobs).ShouldBe([2, 2, 1]);
        encoded.Bytes.ShouldBe(encoded.Chunks.Sum(c => (long)c.Json.Length));
        var read = new List<NewJob>();
        await foreach (var job in encoded)
        {
            read.Add(job);
        }

        read.Select(j => (j.Key, j.ContentHash, j.Provider, StoreJson.Write(j.Spec)))
            .ShouldBe(jobs.Select(j => (j.Key, j.ContentHash, j.Provider, StoreJson.Write(j.Spec))));
    }

    [Fact]
    public void EncodedJobsWriter_IdNamedTwice_IsRefused()
    {
        using var writer = new EncodedJobs.Writer();
        writer.Add(new NewJob("a", "h1", "odirouter", new JobSpec { Prompt = "p", Images = ["https://x.example/a.png"] }));

        Should.Throw<DuplicateJobKeyException>(() => writer.Add(new NewJob("a", "h2", "odirouter", new JobSpec { Prompt = "q", Images = ["https://x.example/a.png"] })));
    }

    [Fact]
    public async Task CheckAndPlan_WithinTheBound_KeepsEveryValidJobInManifestOrder()
    {
        var path = _folder.Write("products.csv", Csv(2_500));

        var check = ManifestImporter.CheckAndPlan(path, new ManifestOptions { Provider = "odirouter" }, "odirouter");

        check.Stream.Diagnostics.ErrorCount.ShouldBe(0);
        check.Planned.ShouldNotBeNull();
        check.Planned.Count.ShouldBe(2_500);
        var keys = new List<string>();
        await foreach (var job in ManifestImporter.ValidJobs(check, new ManifestOptions { Provider = "odirouter" }, skipInvalid: false, CancellationToken.None))
        {
            keys.Add(job.Key);
        }

        keys.ShouldBe(Enumerable.Range(1, 2_500).Select(i => $"product-{i:D5}"));
    }

    [Fact]
    public async Task CheckAndPlan_PastTheBound_DropsTheKeptJobsAndTheImportReadsAgain()
    {
        var path = _folder.Write("products.csv", Csv(2_500));

        var check = ManifestImporter.CheckAndPlan(path, new ManifestOptions { Provider = "odirouter" }, "odirouter", maxBufferedBytes: 50_000);

        check.Planned.ShouldBeNull();
        var count = 0;
        await foreach (var job in ManifestImporter.ValidJobs(check, new ManifestOptions { Provider = "odirouter" }, skipInvalid: false, CancellationToken.None))
        {
            count++;
        }

        count.ShouldBe(2_500);
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

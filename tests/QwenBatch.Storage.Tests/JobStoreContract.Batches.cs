using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    [Fact]
    public async Task MigrateAsync_RunTwice_IsIdempotent()
    {
        var store = OpenStore(await NewDatabaseAsync());

        await store.MigrateAsync(Ct);
        await store.MigrateAsync(Ct);

        var import = await store.ImportBatchAsync(Batch(), NewJobs(2), Ct);
        import.JobsAdded.ShouldBe(2);
    }

    [Fact]
    public async Task MigrateAsync_ThreeStoresConcurrently_AllSucceed()
    {
        var location = await NewDatabaseAsync();
        var stores = Enumerable.Range(0, 3).Select(_ => OpenStore(location)).ToArray();

        await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync(Ct))));

        var import = await stores[0].ImportBatchAsync(Batch(), NewJobs(3), Ct);
        foreach (var store in stores)
        {
            (await store.GetJobsAsync(import.Batch.Id, Ct)).Count.ShouldBe(3);
        }
    }

    [Fact]
    public async Task ImportBatchAsync_NewBatch_CreatesPendingJobsDueNow()
    {
        var jobs = NewJobs(3);

        var import = await Store.ImportBatchAsync(Batch(), jobs, Ct);

        import.Resumed.ShouldBeFalse();
        import.JobsAdded.ShouldBe(3);
        import.Batch.Name.ShouldBe("spring-catalog");
        import.Batch.Source.ShouldBe("/manifests/spring-catalog.csv");
        import.Batch.Provider.ShouldBe(Provider);
        import.Batch.StorageDir.ShouldBe("/output/spring-catalog");
        import.Batch.CreatedAt.ShouldBe(Now);

        var stored = await Store.GetJobsAsync(import.Batch.Id, Ct);
        stored.Select(j => j.Key).ShouldBe(jobs.Select(j => j.Key));
        foreach (var job in stored)
        {
            job.BatchId.ShouldBe(import.Batch.Id);
            job.State.ShouldBe(EditState.Pending);
            job.DueAt.ShouldBe(Now);
            job.CreatedAt.ShouldBe(Now);
            job.LeaseOwner.ShouldBeNull();
            job.LeaseExpiresAt.ShouldBeNull();
            job.Provider.ShouldBe(Provider);
            job.ContentHash.ShouldBe("h1");
            (job.Attempt, job.AcceptedSubmits, job.UncertainSubmits, job.Polls).ShouldBe((0, 0, 0, 0));
            job.RequestId.ShouldBeNull();
            job.Error.ShouldBeNull();
            job.CostUsd.ShouldBe(0m);
            job.Outputs.ShouldBeEmpty();
            job.Files.ShouldBeEmpty();
            job.SubmittedAt.ShouldBeNull();
            job.FinishedAt.ShouldBeNull();
        }
    }

    [Fact]
    public async Task ImportBatchAsync_NewBatch_StoresTheSpecAsGiven()
    {
        var job = NewEdit("row-1");

        var import = await Store.ImportBatchAsync(Batch(), [job], Ct);

        var spec = (await Store.GetJobsAsync(import.Batch.Id, Ct)).Single().Spec;
        spec.Prompt.ShouldBe(job.Spec.Prompt);
        spec.Images.ShouldBe(job.Spec.Images);
        spec.NegativePrompt.ShouldBe("blurry");
        spec.Size.ShouldBe("1024*1024");
        spec.N.ShouldBe(2);
        spec.Seed.ShouldBe(42);
        spec.Variables.ShouldBe(job.Spec.Variables);
    }

    [Fact]
    public async Task ImportBatchAsync_SameImportAgain_ResumesWithoutAddingJobs()
    {
        var first = await ImportAsync(4);
        Time.Advance(TimeSpan.FromMinutes(1));

        var again = await ImportAsync(4);

        again.Resumed.ShouldBeTrue();
        again.JobsAdded.ShouldBe(0);
        again.Batch.ShouldBe(first.Batch);
        (await Store.GetJobsAsync(first.Batch.Id, Ct)).Count.ShouldBe(4);
    }

    [Fact]
    public async Task ImportBatchAsync_NoJobs_CreatesAnEmptyBatch()
    {
        var import = await Store.ImportBatchAsync(Batch(), [], Ct);

        import.Resumed.ShouldBeFalse();
        import.JobsAdded.ShouldBe(0);
        (await Store.FindBatchAsync("spring-catalog", Ct)).ShouldBe(import.Batch);
        (await Store.GetJobsAsync(import.Batch.Id, Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task ImportBatchAsync_SameBatchFromFourStoresAtOnce_CreatesItOnce()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();
        var jobs = NewJobs(50);

        var imports = await Task.WhenAll(stores.Select(s => Task.Run(() => s.ImportBatchAsync(Batch(), jobs, Ct))));

        imports.Count(i => !i.Resumed).ShouldBe(1);
        imports.Sum(i => i.JobsAdded).ShouldBe(50);
        imports.Select(i => i.Batch.Id).Distinct().ShouldHaveSingleItem();
        (await Store.GetJobsAsync(imports[0].Batch.Id, Ct)).Count.ShouldBe(50);
    }

    [Fact]
    public async Task ImportBatchAsync_TwoBatches_KeepsTheirJobsApart()
    {
        var spring = await ImportAsync(2, "spring");
        var autumn = await ImportAsync(3, "autumn");

        autumn.Resumed.ShouldBeFalse();
        autumn.Batch.Id.ShouldNotBe(spring.Batch.Id);
        (await Store.GetJobsAsync(spring.Batch.Id, Ct)).Count.ShouldBe(2);
        (await Store.GetJobsAsync(autumn.Batch.Id, Ct)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task FindBatchAsync_ImportedName_ReturnsTheBatch()
    {
        var import = await ImportAsync(1);

        (await Store.FindBatchAsync("spring-catalog", Ct)).ShouldBe(import.Batch);
        (await Store.FindBatchAsync("no-such-batch", Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task GetBatchAsync_ImportedId_ReturnsTheBatch()
    {
        var import = await ImportAsync(1);

        (await Store.GetBatchAsync(import.Batch.Id, Ct)).ShouldBe(import.Batch);
        (await Store.GetBatchAsync(import.Batch.Id + 1000, Ct)).ShouldBeNull();
    }
}

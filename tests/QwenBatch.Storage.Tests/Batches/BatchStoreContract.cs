using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Batches;

/// <summary>What every backend's <see cref="IBatchStore"/> must do: imports, resumes, failed batches, progress.</summary>
public abstract partial class BatchStoreContract : StoreContract
{
    [Fact]
    public async Task ImportBatchAsync_NewBatch_CreatesPendingEditsDueNow()
    {
        var edits = NewEdits(3);

        var import = await Store.ImportBatchAsync(Batch(), edits, Ct);

        import.Resumed.ShouldBeFalse();
        import.JobsAdded.ShouldBe(3);
        import.Batch.Name.ShouldBe("spring-catalog");
        import.Batch.Source.ShouldBe("/manifests/spring-catalog.csv");
        import.Batch.Provider.ShouldBe(Provider);
        import.Batch.StorageDir.ShouldBe("/output/spring-catalog");
        import.Batch.CreatedAt.ShouldBe(Now);

        var stored = await Store.GetEditsAsync(import.Batch.Id, Ct);
        stored.Select(e => e.Key).ShouldBe(edits.Select(e => e.Key));
        foreach (var edit in stored)
        {
            edit.BatchId.ShouldBe(import.Batch.Id);
            edit.State.ShouldBe(EditState.Pending);
            edit.DueAt.ShouldBe(Now);
            edit.CreatedAt.ShouldBe(Now);
            edit.UpdatedAt.ShouldBe(Now);
            edit.HangfireJob.ShouldBeNull();
            edit.Provider.ShouldBe(Provider);
            edit.ContentHash.ShouldBe("h1");
            (edit.Attempt, edit.AcceptedSubmits, edit.UncertainSubmits, edit.Polls).ShouldBe((0, 0, 0, 0));
            edit.RequestId.ShouldBeNull();
            edit.Error.ShouldBeNull();
            (edit.CostUsd, edit.ReservedUsd, edit.CancelRequested).ShouldBe((0m, 0m, false));
            edit.Outputs.ShouldBeEmpty();
            edit.Files.ShouldBeEmpty();
            edit.SubmittedAt.ShouldBeNull();
            edit.FinishedAt.ShouldBeNull();
            (edit.Revision, edit.Replaces, edit.SupersededBy).ShouldBe((1, (long?)null, (long?)null));
        }
    }

    [Fact]
    public async Task ImportBatchAsync_NewBatch_StoresTheSpecAsGiven()
    {
        var edit = NewEdit("row-1");

        var import = await Store.ImportBatchAsync(Batch(), [edit], Ct);

        var spec = (await Store.GetEditsAsync(import.Batch.Id, Ct)).Single().Spec;
        spec.Prompt.ShouldBe(edit.Spec.Prompt);
        spec.Images.ShouldBe(edit.Spec.Images);
        spec.NegativePrompt.ShouldBe("blurry");
        spec.Size.ShouldBe("1024*1024");
        spec.N.ShouldBe(2);
        spec.Seed.ShouldBe(42);
        spec.Variables.ShouldBe(edit.Spec.Variables);
    }

    [Fact]
    public async Task ImportBatchAsync_NewBatchOfAnOddCount_EveryEditStoredInOrderWithItsOwnFields()
    {
        // 37 edits: more than one statement's worth where a store writes several rows a statement, and a remainder.
        var import = await Store.ImportBatchAsync(Batch(), NewEdits(37), Ct);

        import.JobsAdded.ShouldBe(37);
        var edits = await EditsAsync(import.Batch.Id);
        edits.Select(e => e.Key).ShouldBe(NewEdits(37).Select(e => e.Key));
        edits.ShouldAllBe(e => e.State == EditState.Pending && e.ContentHash == "h1" && e.Provider == Provider);
        edits.Select(e => e.Spec.Prompt).ShouldBe(NewEdits(37).Select(e => e.Spec.Prompt));
        edits[36].Spec.Variables["sku"].ShouldBe("ROW-0037");
    }

    [Fact]
    public async Task ImportBatchAsync_SameImportAgain_ResumesWithoutAddingEdits()
    {
        var first = await ImportAsync(4);
        Time.Advance(TimeSpan.FromMinutes(1));

        var again = await ImportAsync(4);

        again.Resumed.ShouldBeTrue();
        (again.JobsAdded, again.JobsReplaced).ShouldBe((0, 0));
        again.Batch.ShouldBe(first.Batch);
        (await Store.GetEditsAsync(first.Batch.Id, Ct)).Count.ShouldBe(4);
    }

    [Fact]
    public async Task ImportBatchAsync_NoEdits_CreatesAnEmptyBatch()
    {
        var import = await Store.ImportBatchAsync(Batch(), [], Ct);

        import.Resumed.ShouldBeFalse();
        import.JobsAdded.ShouldBe(0);
        (await Store.FindBatchAsync("spring-catalog", Ct)).ShouldBe(import.Batch);
        (await Store.GetEditsAsync(import.Batch.Id, Ct)).ShouldBeEmpty();
    }

    [Fact]
    public async Task ImportBatchAsync_SameBatchFromFourStoresAtOnce_CreatesItOnce()
    {
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();
        var edits = NewEdits(50);

        var imports = await Task.WhenAll(stores.Select(s => Task.Run(() => s.ImportBatchAsync(Batch(), edits, Ct))));

        imports.Count(i => !i.Resumed).ShouldBe(1);
        imports.Sum(i => i.JobsAdded).ShouldBe(50);
        imports.Select(i => i.Batch.Id).Distinct().ShouldHaveSingleItem();
        (await Store.GetEditsAsync(imports[0].Batch.Id, Ct)).Count.ShouldBe(50);
    }

    [Fact]
    public async Task ImportBatchAsync_TwoBatches_KeepsTheirEditsApart()
    {
        var spring = await ImportAsync(2, "spring");
        var autumn = await ImportAsync(3, "autumn");

        autumn.Resumed.ShouldBeFalse();
        autumn.Batch.Id.ShouldNotBe(spring.Batch.Id);
        (await Store.GetEditsAsync(spring.Batch.Id, Ct)).Count.ShouldBe(2);
        (await Store.GetEditsAsync(autumn.Batch.Id, Ct)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task ImportBatchAsync_EnumerationThrows_ImportsNothing()
    {
        await Should.ThrowAsync<InvalidDataException>(() => Store.ImportBatchAsync(Batch(), Failing(), Ct));

        (await Store.FindBatchAsync("spring-catalog", Ct)).ShouldBeNull();
        (await Store.GetStateCountsAsync(Ct)).ShouldBeEmpty();

        async IAsyncEnumerable<NewEdit> Failing()
        {
            foreach (var edit in NewEdits(5))
            {
                yield return edit;
            }

            await Task.CompletedTask;
            throw new InvalidDataException("the manifest turned out invalid at its end");
        }
    }

    [Fact]
    public async Task ImportBatchAsync_ResumeWithBudget_SetsItAndReturnsHeldEditsToPending()
    {
        var edits = await ImportEditsAsync(2, budget: 0.01m);
        (await FeedAsync()).ShouldBeEmpty("a budget of $0.01 holds every edit that needs $0.04");
        (await GetAsync(edits[0].Id)).State.ShouldBe(EditState.Held);
        Time.Advance(TimeSpan.FromMinutes(1));

        var resumed = await Store.ImportBatchAsync(Batch(budget: 1m), NewEdits(2), Ct);

        resumed.Batch.BudgetUsd.ShouldBe(1m);
        (await Store.GetBatchAsync(resumed.Batch.Id, Ct))!.BudgetUsd.ShouldBe(1m);
        var released = await GetAsync(edits[0].Id);
        (released.State, released.Error, released.DueAt).ShouldBe((EditState.Pending, (string?)null, Now));
        (await Store.GetHistoryAsync(edits[0].Id, Ct))[^1].Reason.ShouldBe("budget set to 1 USD");
        (await FeedAsync()).Count.ShouldBe(2);
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

    [Fact]
    public async Task GetBatchesAsync_SeveralBatches_NewestFirst()
    {
        await ImportAsync(1, "first");
        await ImportAsync(1, "second");

        (await Store.GetBatchesAsync(Ct)).Select(b => b.Name).ShouldBe(["second", "first"]);
    }

    [Fact]
    public async Task CreateFailedBatchAsync_SameNameTwice_MakesOneBatchWithNoEditsCarryingTheErrors()
    {
        var failure = "/manifests/banners.csv:2: prompt: is required\n/manifests/banners.csv:3: images: expected 1-3 images";

        var first = await Store.CreateFailedBatchAsync(Batch("nightly-20260101-0200"), failure, Ct);
        var second = await Store.CreateFailedBatchAsync(Batch("nightly-20260101-0200"), "another attempt", Ct);

        second.Id.ShouldBe(first.Id);
        second.Failure.ShouldBe(failure);
        (await Store.GetBatchesAsync(Ct)).ShouldHaveSingleItem().Failure.ShouldBe(failure);
        (await Store.GetBatchAsync(first.Id, Ct))!.StorageDir.ShouldBe("/output/nightly-20260101-0200");
        var progress = await Store.GetProgressAsync(first.Id, Ct);
        progress.ShouldSatisfyAllConditions(() => progress.Total.ShouldBe(0), () => progress.IsSettled.ShouldBeTrue());
        (await ImportAsync(1)).Batch.Failure.ShouldBeNull();
    }

    [Fact]
    public async Task GetProgressAsync_MixedStates_CountsByStateAndSumsCost()
    {
        var edits = await ImportEditsAsync(6);
        await MoveAsync(edits[0], edits[0] with { State = EditState.Succeeded, CostUsd = 0.02m });
        await MoveAsync(edits[1], edits[1] with { State = EditState.Succeeded, CostUsd = 0.04m });
        await MoveAsync(edits[2], edits[2] with { State = EditState.Failed, CostUsd = 0.04m, Error = "bad image" });
        await PutAsync(edits[3], EditState.AtProvider);
        await PutAsync(edits[4], EditState.Queued);
        var other = await ImportEditsAsync(1, "other");
        await MoveAsync(other[0], other[0] with { State = EditState.Succeeded, CostUsd = 1.5m });

        var progress = await Store.GetProgressAsync(edits[0].BatchId, Ct);

        progress.BatchId.ShouldBe(edits[0].BatchId);
        progress.Count(EditState.Succeeded).ShouldBe(2);
        progress.Count(EditState.Failed).ShouldBe(1);
        progress.Count(EditState.AtProvider).ShouldBe(1);
        progress.Count(EditState.Queued).ShouldBe(1);
        progress.Count(EditState.Pending).ShouldBe(1);
        progress.Count(EditState.Held).ShouldBe(0);
        progress.Total.ShouldBe(6);
        progress.SpentUsd.ShouldBe(0.10m);
        progress.IsSettled.ShouldBeFalse();
    }

    [Fact]
    public async Task GetProgressAsync_SmallCosts_SumsExactly()
    {
        var edits = await ImportEditsAsync(3);
        await MoveAsync(edits[0], edits[0] with { State = EditState.Succeeded, CostUsd = 0.000001m });
        await MoveAsync(edits[1], edits[1] with { State = EditState.Succeeded, CostUsd = 0.123456m });
        await MoveAsync(edits[2], edits[2] with { State = EditState.Held, CostUsd = 0.02m });

        var progress = await Store.GetProgressAsync(edits[0].BatchId, Ct);

        progress.SpentUsd.ShouldBe(0.143457m);
        progress.IsSettled.ShouldBeTrue();
        (await GetAsync(edits[1].Id)).CostUsd.ShouldBe(0.123456m);
    }

    [Fact]
    public async Task GetProgressAsync_UnknownBatch_IsEmpty()
    {
        var progress = await Store.GetProgressAsync(12345, Ct);

        progress.Total.ShouldBe(0);
        progress.SpentUsd.ShouldBe(0m);
    }

    [Fact]
    public async Task GetFirstSubmitAsync_SubmittedEdits_IsTheEarliestOfThatBatch()
    {
        var edits = await ImportEditsAsync(3);
        var other = await ImportEditsAsync(1, "other");
        (await Store.GetFirstSubmitAsync(edits[0].BatchId, Ct)).ShouldBeNull();
        var first = Now.AddSeconds(2);
        (await MoveAsync(other[0], other[0] with { State = EditState.AtProvider, SubmittedAt = Now.AddSeconds(1) })).ShouldBeTrue();
        (await MoveAsync(edits[1], edits[1] with { State = EditState.AtProvider, SubmittedAt = Now.AddSeconds(5) })).ShouldBeTrue();
        (await MoveAsync(edits[2], edits[2] with { State = EditState.Succeeded, SubmittedAt = first })).ShouldBeTrue();

        (await Store.GetFirstSubmitAsync(edits[0].BatchId, Ct)).ShouldBe(first);
    }
}

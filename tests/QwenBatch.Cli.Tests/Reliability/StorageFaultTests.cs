using System.Diagnostics;
using System.Globalization;
using QwenBatch.Edits;
using Xunit.Abstractions;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>The storage folder's disk fills up mid-batch, then space returns.</summary>
public sealed class StorageFaultTests(ITestOutputHelper output) : IDisposable
{
    private readonly Support.Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Worker_StorageDiskFull_DownloadsFailCleanlyWithNoPartialFileAndSucceedOnceSpaceReturns()
    {
        const int jobs = 8;
        using var disk = FullDisk.Mount(Path.Combine(_workspace.Root, "disk"), "64m");
        var filled = disk.Fill();
        await using var rig = await ChaosRig.StartAsync(_workspace, new ChaosSetup("fulldisk", jobs, "0.2-0.5", [])
        {
            Storage = disk.Path,
            // The disk stays full for several retries; a full disk must not use up a job before an operator frees space.
            Environment = new Dictionary<string, string> { ["Worker__MaxAttempts"] = "50", ["Worker__RetryMaxDelay"] = "00:00:01" },
        });
        rig.StartWorker();

        // Every job's download has failed at least once, on the full disk, and is waiting to try again.
        var failing = await rig.WaitForAsync("every download to fail on the full disk",
            j => j.All(job => job.State == EditState.Downloading && job.Attempt >= 2), TimeSpan.FromSeconds(90));
        failing.ShouldAllBe(j => j.Error != null && j.Error.Contains("No space left on device", StringComparison.Ordinal));

        // Between retries a download may be under way; once the worker has stopped, nothing it wrote may be left.
        await rig.StopWorkersAsync();
        var batchDir = rig.Batch.StorageDir;
        var leftBehind = Directory.Exists(batchDir) ? Directory.GetFiles(batchDir, "*", SearchOption.AllDirectories) : [];
        leftBehind.ShouldBeEmpty("a failed download leaves no partial file, under its own name or a temporary one");

        disk.Free();
        var sinceFreed = Stopwatch.StartNew();
        rig.StartWorker();
        await rig.WaitSettledAsync(TimeSpan.FromSeconds(90));
        var recovered = sinceFreed.Elapsed;
        await rig.StopWorkersAsync();

        var figures = await BatchAudit.CheckAsync(rig, new AuditRules { MaxUncertainSubmits = 0 });
        var history = await rig.Store.GetHistoryAsync(failing[0].Id, CancellationToken.None);
        history.ShouldContain(h => h.Reason != null && h.Reason.Contains("No space left on device", StringComparison.Ordinal));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{figures.Line} filler_bytes={filled} failed_download_attempts_before_free={failing.Sum(j => j.Attempt)} freed_to_settled={recovered.TotalSeconds:0.0}s total={rig.Elapsed.TotalSeconds:0.0}s"));
    }
}

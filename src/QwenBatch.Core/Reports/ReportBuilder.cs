using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.Reports;

/// <summary>Builds the <see cref="BatchReport"/> of a batch from the store (and the batch folder's skipped.csv).</summary>
public static class ReportBuilder
{
    public static async Task<BatchReport> BuildAsync(IStore store, BatchRecord batch, TimeProvider time, CancellationToken ct)
    {
        var jobs = await store.GetEditsAsync(batch.Id, ct);
        var skipped = await SkippedReader.ReadAsync(batch.StorageDir, ct);
        return Build(batch, jobs, skipped, time.GetUtcNow());
    }

    /// <summary>
    /// One row per manifest id: its current job. A job superseded by a changed row is not a row of its own; the row of the
    /// job that replaced it says so (<see cref="ReportRow.Replaces"/>, <see cref="ReportRow.Change"/>). Cost totals still
    /// count every job, superseded ones included, so they add up to what the provider bills.
    /// </summary>
    public static BatchReport Build(BatchRecord batch, IReadOnlyList<EditRecord> allJobs, IReadOnlyList<SkippedRow> skipped, DateTimeOffset now)
    {
        var byId = allJobs.ToDictionary(j => j.Id);
        var jobs = allJobs.Where(j => j.SupersededBy is null).ToList();
        var rows = jobs.Select(j => Row(j, j.Replaces is { } r ? byId.GetValueOrDefault(r) : null)).ToList();
        var variables = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in jobs.SelectMany(j => j.Spec.Variables.Keys))
        {
            if (seen.Add(name))
            {
                variables.Add(name);
            }
        }

        return new BatchReport(batch, rows, skipped, variables, Totals(jobs, rows, skipped, now, allJobs.Sum(j => j.CostUsd)));
    }

    private static ReportRow Row(EditRecord job, EditRecord? replaced)
    {
        var spec = job.Spec;
        // WaveSpeed documents no cancel: a task it had accepted may still run, and be billed, after we stopped tracking it.
        var mayCharge = job.State == EditState.Cancelled && job.RequestId is not null && job.Provider == ProviderNames.WaveSpeed;
        var error = job.State == EditState.Succeeded ? null : job.Error;
        if (mayCharge && (error is null || !error.Contains("may still charge", StringComparison.Ordinal)))
        {
            error = (error is null ? "" : error + "; ") + "the provider has no cancel: it may still charge for the task";
        }

        if (error is null && job.State == EditState.Held)
        {
            error = "held: the batch budget would be exceeded; raise --budget and run again";
        }

        return new ReportRow(
            job.Key,
            job.State.ToDbName(),
            job.Provider,
            job.RequestId,
            Math.Max(job.AcceptedSubmits + job.UncertainSubmits, job.Attempt),
            job.Files.Count,
            job.Files.Select(f => f.Path).ToList(),
            job.CostUsd,
            Seconds(job.SubmittedAt, job.FinishedAt),
            Seconds(job.SubmittedAt, job.StartedAt),
            error,
            mayCharge,
            new ReportSpec(spec.Prompt, spec.Images, spec.N, spec.NegativePrompt, spec.Size, spec.Seed, spec.PromptExtend, spec.Watermark, spec.OutputFormat, spec.Output),
            spec.Variables)
        {
            Job = job.Id,
            Replaces = job.Replaces,
            Change = job.Replaces is { } old ? Change(old, replaced) : null,
        };
    }

    /// <summary>What the report says of a job that replaced an older one of its manifest id.</summary>
    private static string Change(long old, EditRecord? replaced)
    {
        var what = replaced is null ? "" : replaced.State switch
        {
            EditState.Cancelled when replaced.RequestId is null => ", which was cancelled before it was submitted",
            EditState.Succeeded => $", which had succeeded (its files stay: {string.Join(", ", replaced.Files.Select(f => f.Path))})",
            var state when !state.IsSettled() => $", which is still {state.ToDbName()} and keeps its own files",
            var state => $", which ended {state.ToDbName()}",
        };
        return $"changed since the previous import: replaces job {old}{what}";
    }

    private static ReportTotals Totals(IReadOnlyList<EditRecord> jobs, List<ReportRow> rows, IReadOnlyList<SkippedRow> skipped, DateTimeOffset now, decimal billed)
    {
        var jobsByStatus = rows.GroupBy(r => r.Status).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count());
        var imagesByStatus = jobs.GroupBy(j => j.State.ToDbName()).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Sum(j => j.State == EditState.Succeeded ? j.Files.Count : j.Spec.N));
        var costByProvider = rows.GroupBy(r => r.Provider).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(r => r.CostUsd));
        var latencies = rows.Where(r => r.Status == "succeeded" && r.LatencyS is not null).Select(r => r.LatencyS!.Value).Order().ToList();
        var first = jobs.Where(j => j.SubmittedAt is not null).Select(j => j.SubmittedAt!.Value).DefaultIfEmpty().Min();
        var last = jobs.Where(j => j.FinishedAt is not null).Select(j => j.FinishedAt!.Value).DefaultIfEmpty().Max();
        double? wall = first != default && last > first ? (last - first).TotalSeconds : null;
        var images = jobs.Where(j => j.State == EditState.Succeeded).Sum(j => j.Files.Count);
        return new ReportTotals(
            rows.Count,
            jobsByStatus,
            imagesByStatus,
            billed,
            costByProvider,
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.95),
            wall,
            wall is > 0 ? Math.Round(images / (wall.Value / 60), 3) : null,
            jobs.Sum(j => j.UncertainSubmits),
            skipped.Count,
            rows.Where(r => r.ProviderMayCharge).Select(r => r.Id).ToList(),
            now);
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static double? Percentile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0)
        {
            return null;
        }

        var rank = (int)Math.Ceiling(p * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    private static double? Seconds(DateTimeOffset? from, DateTimeOffset? to) =>
        from is { } a && to is { } b && b >= a ? Math.Round((b - a).TotalSeconds, 3) : null;
}

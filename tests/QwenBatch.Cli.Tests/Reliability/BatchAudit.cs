using System.Globalization;
using System.Security.Cryptography;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Edits;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>What a chaos run may end with, beyond "nothing lost, nothing run twice at once".</summary>
internal sealed record AuditRules
{
    /// <summary>No <c>--fail-rate</c>: nothing the provider does is a reason to give up, so every job must succeed.</summary>
    public bool AllSucceed { get; init; } = true;

    /// <summary>With failed tasks: a job may fail only after the provider failed it this many times plus once (Worker:MaxProviderResubmits).</summary>
    public int MaxProviderResubmits { get; init; } = 2;

    /// <summary>The most uncertain submits (crash windows) the scenario allows; null = any, each still counted against paid submits.</summary>
    public int? MaxUncertainSubmits { get; init; }

    /// <summary>
    /// Tasks no simulator life could count as charged: accepted before a stop and finished while it was down (the counters
    /// of a stopped life end at the stop). Zero unless the simulator was stopped; then report ≤ charged + this × price.
    /// </summary>
    public int LateCharges { get; init; }
}

/// <summary>The figures of an audited run, for the test output and docs/reliability.md.</summary>
internal sealed record AuditFigures(int Jobs, int Succeeded, int Failed, long Submits, int Accepted, int Uncertain, long ChargedImages, decimal ChargedUsd, decimal ReportUsd, int Rescued, SimulatorTotals Simulator)
{
    public string Line => string.Create(CultureInfo.InvariantCulture,
        $"jobs={Jobs} succeeded={Succeeded} failed={Failed} lost=0 submits={Submits} accepted={Accepted} uncertain={Uncertain} "
        + $"paid_tasks={ChargedImages} extra_paid={Math.Max(0, ChargedImages - Succeeded)} charged_usd={ChargedUsd} report_usd={ReportUsd} rescued={Rescued} "
        + $"simulator_lives={Simulator.Lives} rate_limited={Simulator.RateLimited} faults=[{Simulator.FaultList}]");
}

/// <summary>
/// The checks after every chaos run, read from the store, the storage folder, the report and the simulator: every job in a
/// terminal state (and succeeded, or failed only as the provider's failures allow); every succeeded job's outputs whole;
/// paid submits ≤ jobs + the crash windows hit; report total = the provider's charges; no job ever had two steps at once.
/// </summary>
internal static class BatchAudit
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static async Task<AuditFigures> CheckAsync(ChaosRig rig, AuditRules rules)
    {
        var batch = rig.Batch;
        var final = await rig.Store.GetJobsAsync(batch.Id, CancellationToken.None);
        final.Count.ShouldBe(rig.Setup.Jobs);
        final.Where(j => !j.State.IsTerminal()).Select(j => $"{j.Key}: {j.State} {j.Error}").ShouldBeEmpty("every job ends in a terminal state");
        var histories = new Dictionary<long, IReadOnlyList<EditHistoryEntry>>();
        foreach (var job in final)
        {
            histories[job.Id] = await rig.Store.GetHistoryAsync(job.Id, CancellationToken.None);
        }

        if (rules.AllSucceed)
        {
            final.Where(j => j.State != EditState.Succeeded).Select(j => $"{j.Key}: {j.State} {j.Error}").ShouldBeEmpty();
        }
        else
        {
            // A failed job is one the provider failed MaxProviderResubmits + 1 times: no fault of the transport, the database
            // or a crash may use up a job's chances.
            foreach (var job in final.Where(j => j.State != EditState.Succeeded))
            {
                job.State.ShouldBe(EditState.Failed, job.Key);
                var providerFailures = histories[job.Id].Count(h => h.Reason?.StartsWith("provider task ", StringComparison.Ordinal) == true
                    && h.Reason.Contains(" failed", StringComparison.Ordinal));
                providerFailures.ShouldBe(rules.MaxProviderResubmits + 1, $"{job.Key} failed ({job.Error}) after {providerFailures} provider failures");
            }
        }

        // Every output on disk, a whole PNG, with the SHA-256 and length the store recorded; no temporary file left.
        foreach (var job in final.Where(j => j.State == EditState.Succeeded))
        {
            job.Files.ShouldNotBeEmpty(job.Key);
            foreach (var file in job.Files)
            {
                var bytes = await File.ReadAllBytesAsync(Path.Combine(batch.StorageDir, file.Path));
                bytes.AsSpan(0, PngSignature.Length).SequenceEqual(PngSignature).ShouldBeTrue(file.Path);
                bytes.LongLength.ShouldBe(file.Bytes, file.Path);
                Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(file.Sha256.ToLowerInvariant(), file.Path);
            }
        }

        Directory.GetFiles(batch.StorageDir, "*.part", SearchOption.AllDirectories).ShouldBeEmpty();

        // Paid submits: one per accepted task on record, plus at most one per crash window actually hit (counted as uncertain).
        var simulator = await rig.Simulator.TotalsAsync();
        var accepted = final.Sum(j => j.AcceptedSubmits);
        var uncertain = final.Sum(j => j.UncertainSubmits);
        var succeeded = final.Count(j => j.State == EditState.Succeeded);
        simulator.Submits.ShouldBeLessThanOrEqualTo(accepted + uncertain, "a submit the provider accepted is on record or counted as uncertain");
        simulator.ChargedImages.ShouldBeLessThanOrEqualTo(succeeded + uncertain, "paid tasks ≤ succeeded jobs + crash windows hit");
        if (rules.MaxUncertainSubmits is { } most)
        {
            uncertain.ShouldBeLessThanOrEqualTo(most);
        }

        // The report charges what the provider charged. Only a task orphaned in a crash window (charged, never on record)
        // or one that finished while the simulator was down (on record, in no life's counters) makes them differ.
        var report = await CliProcess.RunAsync(rig.Workspace.Root, rig.Environment, "report", batch.Name, "--database", rig.Database);
        report.ExitCode.ShouldBe(0, report.Output);
        var rows = ReportFiles.ReadCsv(Path.Combine(batch.StorageDir, "report.csv"));
        rows.Count.ShouldBe(rig.Setup.Jobs);
        var reportTotal = rows.Sum(r => ReportFiles.Money(r["cost_usd"]));
        var orphaned = (simulator.Submits - accepted) * ChaosRig.PricePerImage;
        if (rules.AllSucceed && rules.LateCharges == 0)
        {
            reportTotal.ShouldBe(simulator.ChargedUsd - orphaned);
        }
        else
        {
            reportTotal.ShouldBeGreaterThanOrEqualTo(simulator.ChargedUsd - Math.Max(0, orphaned));
            reportTotal.ShouldBeLessThanOrEqualTo(simulator.ChargedUsd + (rules.LateCharges * ChaosRig.PricePerImage));
        }

        // No job ever had two steps running at once, read from each job's history.
        var rescued = 0;
        foreach (var job in final)
        {
            HistoryViolations(histories[job.Id], rig.Killed).ShouldBeEmpty(job.Key);
            rescued += histories[job.Id].Count(h => h.Reason?.StartsWith("lease expired", StringComparison.Ordinal) == true);
        }

        if (rig.Killed.Any(k => k.HeldJobs > 0))
        {
            rescued.ShouldBeGreaterThanOrEqualTo(1, "the killed workers' leases were never rescued");
        }

        return new AuditFigures(final.Count, succeeded, final.Count(j => j.State == EditState.Failed), simulator.Submits, accepted, uncertain,
            simulator.ChargedImages, simulator.ChargedUsd, reportTotal, rescued, simulator);
    }

    /// <summary>
    /// What the history forbids. Each entry must leave the state the previous one entered (a second, concurrent step would
    /// move the job from a state it had already left). A job is in 'submitting' only under the lease of the server that
    /// put it there: only that server, or the rescuer returning its lease, may move it on. And a killed server writes
    /// nothing after its death except the rescuer's entries returning its leases.
    /// </summary>
    public static List<string> HistoryViolations(IReadOnlyList<EditHistoryEntry> history, IReadOnlyList<KilledWorker> killed)
    {
        var violations = new List<string>();
        for (var i = 0; i < history.Count; i++)
        {
            var entry = history[i];
            var returned = entry.Reason?.StartsWith("lease expired", StringComparison.Ordinal) == true
                || entry.Reason?.StartsWith("released on shutdown", StringComparison.Ordinal) == true;
            if (i > 0 && entry.From != history[i - 1].To)
            {
                violations.Add($"#{i}: {entry.From}→{entry.To} by {entry.ServerId}, but the job was {history[i - 1].To}");
            }

            if (i > 0 && entry.From == EditState.Submitting && !returned && entry.ServerId != history[i - 1].ServerId)
            {
                violations.Add($"#{i}: {entry.ServerId} moved out of submitting while {history[i - 1].ServerId} held it");
            }

            foreach (var dead in killed)
            {
                if (entry.ServerId?.Contains(dead.ServerTag, StringComparison.Ordinal) == true && entry.At > dead.At && !returned)
                {
                    violations.Add($"#{i}: the killed server {dead.ServerTag} wrote {entry.From}→{entry.To} after it died");
                }
            }
        }

        return violations;
    }
}

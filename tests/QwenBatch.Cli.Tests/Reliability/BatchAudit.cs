using System.Globalization;
using System.Security.Cryptography;
using Hangfire.States;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Edits;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>What a chaos run may end with, beyond "nothing lost, nothing done twice".</summary>
internal sealed record AuditRules
{
    /// <summary>No <c>--fail-rate</c>: nothing the provider does is a reason to give up, so every edit must succeed.</summary>
    public bool AllSucceed { get; init; } = true;

    /// <summary>With failed tasks: an edit may fail only after the provider failed it this many times plus once (Worker:MaxProviderResubmits).</summary>
    public int MaxProviderResubmits { get; init; } = 2;

    /// <summary>The most uncertain submits (crash windows) the scenario allows; null = any, each still counted against paid submits.</summary>
    public int? MaxUncertainSubmits { get; init; }

    /// <summary>
    /// Tasks no simulator life could count as charged: accepted before a stop and finished while it was down (the counters
    /// of a stopped life end at the stop). Zero unless the simulator was stopped; then report ≤ charged + this × price.
    /// </summary>
    public int LateCharges { get; init; }

    /// <summary>
    /// While the simulator was stopped: from the last read of its counters to its next life. A submit it accepted after
    /// that read is in no life's counters, yet its edit moves to at the provider within this window (nothing else can
    /// accept a submit then); such moves are allowed for in the provider's count of accepted submits.
    /// </summary>
    public (DateTimeOffset From, DateTimeOffset To)? StoppedWindow { get; init; }
}

/// <summary>The figures of an audited run, for the test output and docs/reliability.md.</summary>
internal sealed record AuditFigures(
    int Jobs, int Succeeded, int Failed, long Submits, int Accepted, int Uncertain, long ChargedImages, decimal ChargedUsd, decimal ReportUsd, int Resumed,
    SimulatorTotals Simulator)
{
    /// <summary>Submits the provider accepted beyond one per accepted task on record: the paid duplicates.</summary>
    public long Extra => Submits - Accepted;

    public string Line => string.Create(CultureInfo.InvariantCulture,
        $"edits={Jobs} succeeded={Succeeded} failed={Failed} lost=0 submits={Submits} accepted={Accepted} extra={Extra} uncertain={Uncertain} "
        + $"paid_tasks={ChargedImages} extra_paid={Math.Max(0, ChargedImages - Succeeded)} charged_usd={ChargedUsd} report_usd={ReportUsd} resumed_submits={Resumed} "
        + $"simulator_lives={Simulator.Lives} rate_limited={Simulator.RateLimited} faults=[{Simulator.FaultList}]");
}

/// <summary>
/// The checks after every chaos run, read from the store, Hangfire, the storage folder, the report and the simulator:
/// no edit lost (every one in a terminal state: succeeded, or failed only as the provider's failures allow); no edit done
/// twice (one success in its history, no output file beyond its own, no step of it moved by two servers at once); every
/// succeeded edit's outputs whole; the submits the provider accepted beyond one per edit no more than the uncertain
/// submits counted; the report's total what the provider charged; every Hangfire job a killed worker was running taken
/// up again by another server.
/// </summary>
internal static class BatchAudit
{
    /// <summary>The history reason of a submit taken up again after the run sending it was gone (EditJob.ResumeSubmitAsync).</summary>
    public const string ResumedReason = "its submit was cut off";

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static async Task<AuditFigures> CheckAsync(ChaosRig rig, AuditRules rules)
    {
        var batch = rig.Batch;
        var final = await rig.Store.GetEditsAsync(batch.Id, CancellationToken.None);
        final.Count.ShouldBe(rig.Setup.Jobs);
        final.Where(j => !j.State.IsTerminal()).Select(j => $"{j.Key}: {j.State} {j.Error}").ShouldBeEmpty("every edit ends in a terminal state");
        var histories = new Dictionary<long, IReadOnlyList<EditHistoryEntry>>();
        foreach (var edit in final)
        {
            histories[edit.Id] = await rig.Store.GetHistoryAsync(edit.Id, CancellationToken.None);
        }

        if (rules.AllSucceed)
        {
            final.Where(j => j.State != EditState.Succeeded).Select(j => $"{j.Key}: {j.State} {j.Error}").ShouldBeEmpty();
        }
        else
        {
            // A failed edit is one the provider failed MaxProviderResubmits + 1 times: no fault of the transport, the database
            // or a crash may use up an edit's chances.
            foreach (var edit in final.Where(j => j.State != EditState.Succeeded))
            {
                edit.State.ShouldBe(EditState.Failed, edit.Key);
                var providerFailures = histories[edit.Id].Count(h => h.Reason?.StartsWith("provider task ", StringComparison.Ordinal) == true
                    && h.Reason.Contains(" failed", StringComparison.Ordinal));
                providerFailures.ShouldBe(rules.MaxProviderResubmits + 1, $"{edit.Key} failed ({edit.Error}) after {providerFailures} provider failures");
            }
        }

        // Every output on disk, a whole PNG, with the SHA-256 and length the store recorded; no temporary file left, and no
        // file but the recorded ones (an edit downloaded twice under two names would leave one more).
        foreach (var edit in final.Where(j => j.State == EditState.Succeeded))
        {
            edit.Files.ShouldNotBeEmpty(edit.Key);
            foreach (var file in edit.Files)
            {
                var bytes = await File.ReadAllBytesAsync(Path.Combine(batch.StorageDir, file.Path));
                bytes.AsSpan(0, PngSignature.Length).SequenceEqual(PngSignature).ShouldBeTrue(file.Path);
                bytes.LongLength.ShouldBe(file.Bytes, file.Path);
                Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(file.Sha256.ToLowerInvariant(), file.Path);
            }
        }

        Directory.GetFiles(batch.StorageDir, "*.part", SearchOption.AllDirectories).ShouldBeEmpty();
        var recorded = final.SelectMany(e => e.Files).Select(f => Path.GetFullPath(Path.Combine(batch.StorageDir, f.Path))).ToHashSet(StringComparer.Ordinal);
        Directory.GetFiles(batch.StorageDir, "*.png", SearchOption.AllDirectories).Where(f => !recorded.Contains(Path.GetFullPath(f)))
            .ShouldBeEmpty("an output file no edit recorded");

        // The provider's own view, per edit, first (its failure names the edits and their stories): what it accepted for
        // each, against what each edit counts.
        var simulator = await rig.Simulator.TotalsAsync();
        if (rig.Recorder is { } recorder)
        {
            var accepts = recorder.Submits.Where(s => s.Accepted).GroupBy(s => s.Image ?? "?").ToDictionary(g => g.Key, g => g.ToList());
            accepts.Values.Sum(a => a.Count).ShouldBe((int)simulator.Submits, "the recorder saw every submit the simulator accepted");
            var overrun = new List<string>();
            foreach (var edit in final)
            {
                var taken = accepts.GetValueOrDefault(edit.Spec.Images.Single()) ?? [];
                if (taken.Count > edit.AcceptedSubmits + edit.UncertainSubmits)
                {
                    var posts = taken.Select(t => string.Create(CultureInfo.InvariantCulture, $"    POST by {t.Key} sent {t.Sent:HH:mm:ss.fff} answered {t.Answered:HH:mm:ss.fff} as {t.RequestId}"));
                    var story = histories[edit.Id].Select(h => string.Create(CultureInfo.InvariantCulture, $"    {h.At:HH:mm:ss.fff} {h.From}→{h.To} by {h.ServerId}: {h.Reason}"));
                    var named = string.Create(CultureInfo.InvariantCulture, $"dit {edit.Id} ");
                    var logged = rig.Workers.SelectMany(w => w.Stderr.Split('\n').Where(l => l.Contains(named, StringComparison.Ordinal)).Select(l => $"    worker {w.Id}: {l.TrimEnd()}"));
                    overrun.Add($"{edit.Key} (edit {edit.Id}): the provider accepted {taken.Count}, the edit counts {edit.AcceptedSubmits} accepted and "
                        + $"{edit.UncertainSubmits} uncertain\n{string.Join("\n", posts)}\n{string.Join("\n", story)}\n{string.Join("\n", logged)}");
                }
            }

            overrun.ShouldBeEmpty("a submit the provider accepted is on record or counted as uncertain");
        }

        // Paid submits: one per accepted task on record, plus at most one per crash window actually hit (counted as uncertain).
        var accepted = final.Sum(j => j.AcceptedSubmits);
        var uncertain = final.Sum(j => j.UncertainSubmits);
        var succeeded = final.Count(j => j.State == EditState.Succeeded);
        var uncounted = rules.StoppedWindow is var (from, to)
            ? histories.Values.SelectMany(h => h).Count(h => h.To == EditState.AtProvider && h.At >= from && h.At <= to)
            : 0;
        (simulator.Submits + uncounted).ShouldBeGreaterThanOrEqualTo(accepted, $"every accepted task on record was accepted by the provider ({uncounted} accepted as its counters were last read)");
        (simulator.Submits - accepted).ShouldBeLessThanOrEqualTo(uncertain, "a submit the provider accepted is on record or counted as uncertain");
        simulator.ChargedImages.ShouldBeLessThanOrEqualTo(succeeded + uncertain, "paid tasks ≤ succeeded edits + crash windows hit");
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

        // No edit done twice or moved by two servers at once, read from each edit's history.
        var resumed = 0;
        foreach (var edit in final)
        {
            HistoryViolations(histories[edit.Id], rig.Killed).ShouldBeEmpty(edit.Key);
            resumed += histories[edit.Id].Count(h => h.Reason?.StartsWith(ResumedReason, StringComparison.Ordinal) == true);
        }

        // A killed worker's Hangfire jobs stayed Processing under its dead server; each was fetched again, by another.
        foreach (var dead in rig.Killed)
        {
            foreach (var job in dead.Jobs)
            {
                TakenUpAgain(rig, job, dead).ShouldBeTrue($"Hangfire job {job}, Processing on the killed server {dead.ServerTag}, was never run again by another server");
            }
        }

        return new AuditFigures(final.Count, succeeded, final.Count(j => j.State == EditState.Failed), simulator.Submits, accepted, uncertain,
            simulator.ChargedImages, simulator.ChargedUsd, reportTotal, resumed, simulator);
    }

    /// <summary>
    /// What the history forbids. Each entry must leave the state the previous one entered (a second, concurrent step would
    /// move the edit from a state it had already left), and an edit succeeds once. An edit is in 'submitting' on behalf of
    /// the server that put it there: only that server moves it on, unless the server was gone and the submit was taken up
    /// again, or the edit's job gave up — both counted as an uncertain submit. And a killed server writes nothing after
    /// its death.
    /// </summary>
    public static List<string> HistoryViolations(IReadOnlyList<EditHistoryEntry> history, IReadOnlyList<KilledWorker> killed)
    {
        var violations = new List<string>();
        for (var i = 0; i < history.Count; i++)
        {
            var entry = history[i];
            if (i > 0 && entry.From != history[i - 1].To)
            {
                violations.Add($"#{i}: {entry.From}→{entry.To} by {entry.ServerId}, but the edit was {history[i - 1].To}");
            }

            var takenOver = entry.Reason?.StartsWith(ResumedReason, StringComparison.Ordinal) == true
                || entry.Reason?.StartsWith("gave up after", StringComparison.Ordinal) == true;
            if (i > 0 && entry.From == EditState.Submitting && entry.To != EditState.Cancelled && !takenOver && entry.ServerId != history[i - 1].ServerId)
            {
                violations.Add($"#{i}: {entry.ServerId} moved out of submitting while {history[i - 1].ServerId} was sending it");
            }

            foreach (var dead in killed)
            {
                if (entry.ServerId?.Contains(dead.ServerTag, StringComparison.Ordinal) == true && entry.At > dead.At)
                {
                    violations.Add($"#{i}: the killed server {dead.ServerTag} wrote {entry.From}→{entry.To} after it died");
                }
            }
        }

        if (history.Count(h => h.To == EditState.Succeeded) > 1)
        {
            violations.Add("succeeded more than once");
        }

        return violations;
    }

    /// <summary>
    /// Whether the job left the dead server's hands: its run there was followed by a run on another server, or by a state
    /// written before the death (the run ended between the look and the kill).
    /// </summary>
    private static bool TakenUpAgain(ChaosRig rig, string jobId, KilledWorker dead)
    {
        var details = rig.Hangfire().GetMonitoringApi().JobDetails(jobId);
        if (details is null)
        {
            // Expired from Hangfire's tables: only a finished job expires, so it was run to its end by someone.
            return true;
        }

        var history = details.History.OrderBy(h => h.CreatedAt).ToList();
        var there = history.FindLastIndex(h => h.StateName == ProcessingState.StateName && RanOn(h, dead.ServerTag));
        if (there < 0)
        {
            return true;
        }

        var next = history.Skip(there + 1).FirstOrDefault();
        return next is not null && (next.StateName == ProcessingState.StateName || Utc(next.CreatedAt) <= dead.At);
    }

    private static bool RanOn(global::Hangfire.Storage.Monitoring.StateHistoryDto state, string serverTag) =>
        state.Data.TryGetValue("ServerId", out var server) && server.Contains(serverTag, StringComparison.Ordinal);

    private static DateTimeOffset Utc(DateTime at) => new(DateTime.SpecifyKind(at, DateTimeKind.Utc));
}

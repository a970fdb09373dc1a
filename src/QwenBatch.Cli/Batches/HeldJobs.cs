using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Cli.Batches;

/// <summary>Lists the jobs a budget held, with the reason and the way to release them, at the end of a run.</summary>
internal static class HeldJobs
{
    private const int MaxListed = 50;

    public static async Task PrintAsync(BatchRecord batch, IReadOnlyList<EditRecord> jobs)
    {
        var held = jobs.Where(j => j.State == EditState.Held).ToList();
        if (held.Count == 0)
        {
            return;
        }

        await Console.Out.WriteLineAsync($"{held.Count} job(s) held, not submitted:");
        foreach (var job in held.Take(MaxListed))
        {
            await Console.Out.WriteLineAsync($"  held {job.Key}: {job.Error}");
        }

        if (held.Count > MaxListed)
        {
            await Console.Out.WriteLineAsync($"  … and {held.Count - MaxListed} more ('qwenbatch status {batch.Name}').");
        }

        if (held.Any(j => j.Error?.Contains("daily budget", StringComparison.Ordinal) == true))
        {
            await Console.Out.WriteLineAsync("Jobs held by a provider's daily budget resume by themselves after 00:00 UTC (in a worker, or a rerun) or when its DailyBudgetUsd is raised.");
        }

        if (held.Any(j => j.Error?.Contains("daily budget", StringComparison.Ordinal) != true))
        {
            await Console.Out.WriteLineAsync($"Release them with 'qwenbatch retry {batch.Name} --budget USD' or a rerun with a larger --budget.");
        }
    }
}

namespace QwenBatch.Cli.Tests.Support;

/// <summary>Manifests the CLI tests write into their workspace.</summary>
internal static class TestManifests
{
    /// <summary>A CSV of <paramref name="jobs"/> one-image jobs over the sample mug ($0.02 each on the simulator).</summary>
    public static string OneImageJobs(Workspace workspace, string name, int jobs)
    {
        var lines = new List<string> { "id,prompt,images" };
        lines.AddRange(Enumerable.Range(1, jobs).Select(i => $"job-{i},White studio background,samples/images/mug.png"));
        var path = Path.Combine(workspace.Root, name + ".csv");
        File.WriteAllLines(path, lines);
        return name + ".csv";
    }
}

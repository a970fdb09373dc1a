using BenchmarkDotNet.Attributes;
using QwenBatch.Batches;
using QwenBatch.Manifests;

namespace QwenBatch.Micro;

/// <summary>
/// Per manifest row: the manifest reader (CsvHelper underneath, plus templating and validation) and the batch planner
/// turning each row into jobs with their content hash — what an import does per row before the database — against
/// CsvHelper alone reading the same five fields of the same 10,000-row file.
/// </summary>
public class CsvRowBenchmarks
{
    private const int Rows = 10_000;
    private static readonly ManifestOptions Options = new() { Provider = "odirouter" };
    private string _path = null!;

    [GlobalSetup]
    public void Setup() => _path = ManifestFile.Generate(Rows);

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(Path.GetDirectoryName(_path)!, recursive: true);

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows, Description = "CsvHelper: read 5 fields")]
    public int CsvHelperOnly()
    {
        using var csv = CsvHelper.CsvReader.FromFile(_path, new CsvHelper.CsvReaderOptions(), FileOptions.SequentialScan);
        csv.ReadHeader();
        var length = 0;
        while (csv.Read())
        {
            for (var i = 0; i < 5; i++)
            {
                length += csv.GetString(i).Length;
            }
        }

        return length;
    }

    [Benchmark(OperationsPerInvoke = Rows, Description = "ManifestReader + BatchPlanner.Jobs")]
    public int ReadAndPlan()
    {
        var jobs = 0;
        var stream = ManifestReader.Open(_path, Options);
        foreach (var row in stream.Jobs())
        {
            foreach (var _ in BatchPlanner.Jobs(row, "odirouter"))
            {
                jobs++;
            }
        }

        return jobs == Rows ? jobs : throw new InvalidOperationException($"planned {jobs} jobs, expected {Rows}");
    }
}

using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

// BenchmarkDotNet micro-benchmarks of the hot code: the claim round trip (PostgreSQL), CSV row mapping (manifest reader +
// batch planner per row), the shared limiter's GCRA reservation (PostgreSQL and SQLite). Each class has a baseline
// (SELECT 1 on the same pool; CsvHelper reading the same fields) so the ratio column is the figure to read.
// Usage: dotnet run -c Release --project bench/QwenBatch.Micro -- [--smoke] [BenchmarkDotNet options, e.g. --filter *Feed*]
// --smoke runs each benchmark once (BenchmarkDotNet's dry job): it only proves they still run.
var smoke = args.Contains("--smoke");
var rest = args.Where(a => a != "--smoke").ToArray();
if (!rest.Contains("--filter"))
{
    rest = [.. rest, "--filter", "*"];
}

// In-process: no per-benchmark project generation and build, which on this shared machine costs minutes.
var job = (smoke ? Job.Dry : Job.Default.WithWarmupCount(3).WithIterationCount(15))
    .WithToolchain(InProcessEmitToolchain.Instance);
// Min and median next to the mean: on a shared 2-core machine the mean carries other people's builds.
var config = DefaultConfig.Instance.AddJob(job).AddDiagnoser(MemoryDiagnoser.Default)
    .AddColumn(StatisticColumn.Min, StatisticColumn.Median)
    .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "qwenbatch-micro-artifacts"));
var summaries = BenchmarkSwitcher.FromAssembly(typeof(QwenBatch.Micro.FeedBenchmarks).Assembly).Run(rest, config);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;

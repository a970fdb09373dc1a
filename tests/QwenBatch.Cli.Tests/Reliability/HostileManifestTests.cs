using System.Globalization;
using System.Text;
using Npgsql;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Postgres;
using Xunit.Abstractions;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>
/// Hostile manifests through the real <c>validate</c> and <c>submit</c> processes: random bytes, huge fields, deep JSON,
/// wrong encodings, very many columns, an error after many good rows, seeded mutations. Never a crash (exit 2 with a
/// message, never a stack trace), never a partial enqueue. Formula cells come out neutralized in report.csv and errors.csv.
/// </summary>
public sealed class HostileManifestTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Fixed, so a failure names a case that reproduces.</summary>
    private const int Seed = 20261121;

    private static readonly string[] FormulaCells = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1:A9)", "=HYPERLINK(\"http://evil.example\",\"x\")", "\t=1+1"];

    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task ValidateAndSubmit_HostileManifests_Exit2WithAMessageAndEnqueueNothing()
    {
        var postgres = await PostgresServer.GetAsync();
        var database = await postgres.CreateDatabaseAsync("hostile");
        var environment = new Dictionary<string, string> { ["ConnectionStrings__Postgres"] = database };
        var random = new Random(Seed);
        var cases = HostileCases(random).ToList();

        // Four at a time: each is two short processes.
        using var gate = new SemaphoreSlim(4);
        var outcomes = await Task.WhenAll(cases.Select(async c =>
        {
            await gate.WaitAsync();
            try
            {
                await File.WriteAllBytesAsync(Path.Combine(_workspace.Root, c.File), c.Bytes);
                var validate = await CliProcess.RunAsync(_workspace.Root, environment, "validate", c.File);
                var submit = await CliProcess.RunAsync(_workspace.Root, environment, "submit", c.File, "--provider", "odirouter");
                return (Case: c, Validate: validate, Submit: submit);
            }
            finally
            {
                gate.Release();
            }
        }));

        foreach (var (c, validate, submit) in outcomes)
        {
            foreach (var (command, result) in new[] { ("validate", validate), ("submit", submit) })
            {
                var what = $"{command} {c.File} ({c.What}, seed {Seed}):\n{ChaosRig.Tail(result.Output)}";
                result.ExitCode.ShouldBe(2, what);
                result.Output.ShouldContain(c.File, Case.Sensitive, what);
                NoStackTrace(result.Output).ShouldBeTrue(what);
            }
        }

        (await CountAsync(database, "batches")).ShouldBe(0, "an invalid manifest enqueued a batch");
        (await CountAsync(database, "jobs")).ShouldBe(0, "an invalid manifest enqueued jobs");
        output.WriteLine($"cases={cases.Count} ({string.Join(", ", cases.Select(c => c.What).Distinct())}) all exit 2, none enqueued");
    }

    [Fact]
    public async Task Run_FormulaCellsInFailedAndSkippedRows_ComeOutNeutralizedInReportAndErrorsCsv()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.1-0.2", "--fail-rate", "1");
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = "odr-formula-key-1f2e",
            ["Worker__MaxProviderResubmits"] = "0",
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:00.500",
        };
        var csv = new StringBuilder("id,prompt,images,n,sku,note\n");
        for (var i = 0; i < FormulaCells.Length; i++)
        {
            var next = FormulaCells[(i + 1) % FormulaCells.Length];
            csv.Append(CultureInfo.InvariantCulture, $"f{i},{Quote(FormulaCells[i])},samples/images/mug.png,1,{Quote(next)},{Quote(FormulaCells[(i + 2) % FormulaCells.Length])}\n");
        }

        // A row refused by validation, skipped, and written back into errors.csv with its cells.
        csv.Append(CultureInfo.InvariantCulture, $"bad,{Quote(FormulaCells[0])},samples/images/mug.png,99,{Quote(FormulaCells[1])},{Quote(FormulaCells[3])}\n");
        await File.WriteAllTextAsync(Path.Combine(_workspace.Root, "formulas.csv"), csv.ToString());

        var run = await CliProcess.RunAsync(_workspace.Root, environment, "run", "formulas.csv", "--provider", "odirouter", "--skip-invalid");

        run.ExitCode.ShouldBe(3, run.Output);
        foreach (var file in new[] { "report.csv", "errors.csv" })
        {
            var rows = ReportFiles.ReadCsv(Path.Combine(_workspace.BatchDir("formulas"), file));
            rows.ShouldNotBeEmpty(file);
            var cells = rows.SelectMany(r => r.Values).ToList();
            cells.Where(c => c.Length > 0 && "=+-@\t\r".Contains(c[0], StringComparison.Ordinal)).ShouldBeEmpty($"{file} has cells a spreadsheet would run");

            // Neutralized, not dropped: every payload is still there, behind the escape (the reader trims a cell's blanks).
            foreach (var formula in FormulaCells.Select(f => f.Trim()))
            {
                cells.ShouldContain(c => c.Length > formula.Length && c.EndsWith(formula, StringComparison.Ordinal), $"{file} lost {formula}");
            }
        }

        var errors = ReportFiles.ReadCsv(Path.Combine(_workspace.BatchDir("formulas"), "errors.csv"));
        errors.Count.ShouldBe(FormulaCells.Length + 1, "every failed row and the skipped one");
    }

    private static string Quote(string cell) => "\"" + cell.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static bool NoStackTrace(string text) =>
        !text.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase)
        && !text.Contains("   at System.", StringComparison.Ordinal)
        && !text.Contains("   at QwenBatch.", StringComparison.Ordinal);

    private static async Task<long> CountAsync(string database, string table)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var exists = new NpgsqlCommand($"SELECT to_regclass('{table}') IS NOT NULL", connection);
        if (await exists.ExecuteScalarAsync() is not true)
        {
            return 0; // nothing was ever migrated, let alone enqueued
        }

        await using var count = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    private sealed record HostileCase(string File, string What, byte[] Bytes);

    private static IEnumerable<HostileCase> HostileCases(Random random)
    {
        var utf8 = new UTF8Encoding(false);
        foreach (var extension in new[] { "csv", "json", "jsonl" })
        {
            var bytes = new byte[4096];
            random.NextBytes(bytes);
            yield return new HostileCase($"random.{extension}", "random bytes", bytes);
        }

        yield return new HostileCase("huge-field.csv", "an 8 MB cell", utf8.GetBytes($"id,prompt,images\na,{new string('x', 8 * 1024 * 1024)},https://img.example/a.png\n"));
        yield return new HostileCase("deep.json", "JSON nested 100,000 deep", utf8.GetBytes(new string('[', 100_000) + new string(']', 100_000)));
        yield return new HostileCase("deep-field.json", "a field nested 5,000 deep",
            utf8.GetBytes("{\"jobs\":[{\"id\":\"a\",\"images\":[\"https://img.example/a.png\"],\"prompt\":" + string.Concat(Enumerable.Repeat("{\"a\":", 5000)) + "1" + new string('}', 5000) + "}]}"));
        yield return new HostileCase("latin1.csv", "Latin-1 text", Encoding.Latin1.GetBytes("id,prompt,images\na,Caf\u00e9 cr\u00e8me \u00e0 la fen\u00eatre,https://img.example/a.png\n"));
        yield return new HostileCase("utf16.csv", "UTF-16 without a byte order mark", Encoding.Unicode.GetBytes("id,prompt,images\na,white,https://img.example/a.png\n"));
        // Extra columns are variables, so many of them are valid: the row's n = 99 makes the case invalid after all of them are read.
        yield return new HostileCase("columns.csv", "50,000 columns",
            utf8.GetBytes("id,prompt,images,n," + string.Join(',', Enumerable.Range(0, 50_000).Select(i => $"c{i}")) + "\na,p,https://img.example/a.png,99," + string.Join(',', Enumerable.Repeat("v", 50_000)) + "\n"));
        yield return new HostileCase("nul.csv", "NUL bytes in a cell", utf8.GetBytes("id,prompt,images\na,wh\0\0ite,https://img.example/a.png\n"));

        // Many good rows, then one bad one: nothing of the good ones may be enqueued.
        var good = Enumerable.Range(1, 500).Select(i => $"j{i},white background,https://img.example/{i}.png");
        yield return new HostileCase("late-error.csv", "an error after 500 good rows", utf8.GetBytes("id,prompt,images,n\n" + string.Join('\n', good.Select(g => g + ",1")) + "\nlast,white,https://img.example/x.png,99\n"));
        yield return new HostileCase("late-error.jsonl", "a broken line after 500 good ones",
            utf8.GetBytes(string.Concat(Enumerable.Range(1, 500).Select(i => $"{{\"id\":\"j{i}\",\"prompt\":\"p\",\"images\":[\"https://img.example/{i}.png\"]}}\n")) + "{\"id\":\"last\",\"prompt\":\n"));
        yield return new HostileCase("formula-invalid.csv", "formula cells in an invalid row",
            utf8.GetBytes($"id,prompt,images,n,sku\n{Quote(FormulaCells[0])},{Quote(FormulaCells[3])},https://img.example/a.png,99,{Quote(FormulaCells[1])}\n"));

        // Seeded mutations of the first row; the last row (n = 0) stays intact, so every case stays invalid. No mutation
        // writes or removes a line break or a quote, which could fold the last row into a cell.
        var seed = utf8.GetBytes("id,prompt,images,n,seed,size\na,\"white, studio\",https://img.example/a.png,1,5,1024*1024\nb,q,https://img.example/b.png,0,,512*512\n");
        var rowStart = Array.IndexOf(seed, (byte)'\n') + 1;
        var rowEnd = Array.IndexOf(seed, (byte)'\n', rowStart);
        for (var i = 0; i < 3; i++)
        {
            var mutated = (byte[])seed.Clone();
            for (var m = 0; m < 1 + random.Next(8); m++)
            {
                var at = rowStart + random.Next(rowEnd - rowStart);
                var value = (byte)random.Next(256);
                if (mutated[at] != (byte)'"' && value is not ((byte)'\n' or (byte)'\r' or (byte)'"'))
                {
                    mutated[at] = value;
                }
            }

            yield return new HostileCase($"mutated-{i}.csv", "a mutated manifest", mutated);
        }
    }
}

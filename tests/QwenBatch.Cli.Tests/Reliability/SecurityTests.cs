using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Npgsql;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Testing.Http;
using QwenBatch.Testing.Postgres;
using Xunit.Abstractions;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>
/// Keys redacted everywhere, checked the way an auditor would: a full run with recognisable fake keys and database
/// password, then every artifact grepped. The dashboard's own refusals (remote access without credentials, cross-site
/// POSTs, form tokens, input roots) are proven in tests/QwenBatch.Dashboard.Tests/Api/ApiEndpointTests.cs; here they are
/// checked once more against the real <c>serve</c> process.
/// </summary>
public sealed class SecurityTests(ITestOutputHelper output) : IDisposable
{
    private const string OdirouterKey = "odr-CANARY-7c41e9b2d05f";
    private const string WaveSpeedKey = "ws-CANARY-93ab61f0e2c7";
    private const string DatabasePassword = "pg-CANARY-5e1d8a";
    private static readonly string[] Secrets = [OdirouterKey, WaveSpeedKey, DatabasePassword];
    private static readonly string[] HangfirePages =
    [
        "", "/jobs/enqueued", "/jobs/processing", "/jobs/scheduled", "/jobs/succeeded", "/jobs/failed", "/jobs/deleted", "/jobs/awaiting",
        "/retries", "/recurring", "/servers",
    ];

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task ServeWithTwoProvidersOneEchoingTheKey_NoKeyOrPasswordInAnyOutputLogReportPageApiAnswerOrRow()
    {
        var postgres = await PostgresServer.GetAsync();
        // The test cluster trusts every local connection, so the password is carried along (and must be hidden) but unused.
        var database = new NpgsqlConnectionStringBuilder(await postgres.CreateDatabaseAsync("secrets")) { Password = DatabasePassword }.ConnectionString;
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.1-0.3", "--error-rate", "0.2", "--fail-rate", "0.3", "--truncate-rate", "0.1");
        await using var echo = EchoingProvider.Start();
        var port = LoopbackServer.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = OdirouterKey,
            ["Providers__WaveSpeed__BaseUrl"] = echo.BaseUrl,
            ["WAVESPEED_API_KEY"] = WaveSpeedKey,
            ["ConnectionStrings__Postgres"] = database,
            ["Worker__MaxProviderResubmits"] = "0",
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:00.500",
            ["Worker__RetryBaseDelay"] = "00:00:00.100",
            ["Worker__RetryMaxDelay"] = "00:00:00.500",
        };
        var outputs = new List<string>();

        // Listening on every interface, so a request from this machine's own network address arrives as a remote one.
        await using var serve = CliProcess.Start(_workspace.Root, environment, "serve", "--urls", $"http://0.0.0.0:{port}", "--verbose");
        var local = new Uri($"http://127.0.0.1:{port}/");
        await WaitForAsync(async () => (await Http.GetAsync(new Uri(local, "healthz"))).IsSuccessStatusCode, "serve to answer /healthz", serve);

        await File.WriteAllLinesAsync(Path.Combine(_workspace.Root, "keys.csv"),
            ["id,prompt,images", .. Enumerable.Range(1, 8).Select(i => $"k{i},white background,samples/images/mug.png")]);
        var submit = await CliProcess.RunAsync(_workspace.Root, environment, "submit", "keys.csv", "--provider", "odirouter", "--json", "--verbose");
        submit.ExitCode.ShouldBe(0, submit.Output);
        outputs.Add(submit.Output);
        var keysBatch = JsonDocument.Parse(submit.Stdout).RootElement.GetProperty("batch").ToString();

        using var upload = new MultipartFormDataContent
        {
            { new ByteArrayContent(Encoding.UTF8.GetBytes("id,prompt,images\ne1,white,https://img.example/1.png\ne2,white,https://img.example/2.png\n")), "manifest", "echo.csv" },
        };
        var posted = await Http.PostAsync(new Uri(local, "api/batches?provider=wavespeed&name=echo"), upload);
        var postedBody = await posted.Content.ReadAsStringAsync();
        posted.StatusCode.ShouldBe(HttpStatusCode.Created, postedBody);
        outputs.Add(postedBody);
        var echoBatch = JsonDocument.Parse(postedBody).RootElement.GetProperty("batch").ToString();

        foreach (var batch in new[] { keysBatch, echoBatch })
        {
            await WaitForAsync(async () => JsonDocument.Parse(await Http.GetStringAsync(new Uri(local, $"api/batches/{batch}"))).RootElement.GetProperty("done").GetBoolean(),
                $"batch {batch} to finish", serve);
        }

        // Cross-site writes are refused by the real process too (the browser marks them; curl sends neither header).
        using (var crossSite = new HttpRequestMessage(HttpMethod.Post, new Uri(local, $"api/batches/{keysBatch}/retry")))
        {
            crossSite.Headers.Add("Origin", "https://evil.example");
            crossSite.Headers.Add("Sec-Fetch-Site", "cross-site");
            var refused = await Http.SendAsync(crossSite);
            refused.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        }

        // Remote access without credentials: this machine's own non-loopback address is a remote client to the server.
        var remoteChecked = 0;
        if (NetworkAddress() is { } address)
        {
            foreach (var path in new[] { "hangfire", "hangfire/jobs/failed", "dashboard", "api/batches", $"api/batches/{keysBatch}/report.csv" })
            {
                var remote = await Http.GetAsync(new Uri($"http://{address}:{port}/{path}"));
                remote.StatusCode.ShouldBe(HttpStatusCode.Forbidden, $"{path} from {address}");
                remoteChecked++;
            }
        }

        foreach (var name in new[] { "keys", "echo" })
        {
            var report = await CliProcess.RunAsync(_workspace.Root, environment, "report", name, "--verbose");
            report.ExitCode.ShouldBe(0, report.Output);
            outputs.Add(report.Output);
        }

        // Every page and API answer about these batches and their edits: QwenBatch's pages, and Hangfire's dashboard with each
        // edit's job (its states carry the provider's request ids and the errors of failed attempts).
        var editIds = await QueryAsync(database, "SELECT id::text FROM jobs");
        var hangfireJobs = await QueryAsync(database, "SELECT hangfire_job FROM jobs WHERE hangfire_job IS NOT NULL");
        var paths = new List<string> { "healthz", "dashboard", "dashboard/batches", "api/batches" };
        foreach (var batch in new[] { keysBatch, echoBatch })
        {
            paths.AddRange([$"dashboard/batches/{batch}", $"api/batches/{batch}", $"api/batches/{batch}/report.csv"]);
        }

        paths.AddRange(editIds.Select(id => $"dashboard/job/{id}"));
        paths.AddRange(HangfirePages.Select(p => $"hangfire{p}"));
        paths.AddRange(hangfireJobs.Select(id => $"hangfire/jobs/details/{id}"));
        var pages = new List<string>();
        foreach (var path in paths)
        {
            var answer = await Http.GetAsync(new Uri(local, path));
            answer.IsSuccessStatusCode.ShouldBeTrue($"{path}: {(int)answer.StatusCode}");
            pages.Add($"{path}\n{await answer.Content.ReadAsStringAsync()}");
        }

        serve.Terminate();
        var served = await serve.WaitAsync();
        outputs.Add(served.Output);

        // Every row of every table: QwenBatch's, and Hangfire's beside them (job arguments, state data, exceptions).
        var tables = await QueryAsync(database, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname IN ('public', 'hangfire')");
        tables.ShouldContain("hangfire.state");
        var rows = new List<string>();
        foreach (var table in tables)
        {
            rows.AddRange((await QueryAsync(database, $"SELECT t::text FROM {table} t")).Select(r => $"{table}: {r}"));
        }

        // Every file the run wrote: logs, outputs, reports (csv, json, html), errors.csv, state.
        var files = Directory.GetFiles(_workspace.Root, "*", SearchOption.AllDirectories)
            .Where(f => !f.StartsWith(Path.Combine(_workspace.Root, "samples"), StringComparison.Ordinal)).ToList();
        files.ShouldContain(f => f.EndsWith(".jsonl", StringComparison.Ordinal), "no log file was written");
        files.ShouldContain(f => f.EndsWith("errors.csv", StringComparison.Ordinal));
        files.ShouldContain(f => f.EndsWith("report.html", StringComparison.Ordinal));

        var leaks = new List<string>();
        void Scan(string where, string text)
        {
            foreach (var secret in Secrets.Where(s => text.Contains(s, StringComparison.Ordinal)))
            {
                leaks.Add($"{secret[..6]}… in {where}");
            }
        }

        outputs.ForEach(o => Scan("process output", o));
        pages.ForEach(p => Scan(p[..p.IndexOf('\n', StringComparison.Ordinal)], p));
        rows.ForEach(r => Scan(r[..r.IndexOf(':', StringComparison.Ordinal)], r));
        foreach (var file in files)
        {
            Scan(file, Encoding.UTF8.GetString(await ReadSharedAsync(file)));
        }

        leaks.ShouldBeEmpty();

        // The echo was exercised: the provider put the key in its answer, and the stored error carries the mask instead.
        echo.Echoed.ShouldBeGreaterThan(0);
        var echoErrors = await QueryAsync(database, $"SELECT coalesce(error, '') FROM jobs WHERE batch_id = {long.Parse(echoBatch, System.Globalization.CultureInfo.InvariantCulture)}");
        echoErrors.ShouldAllBe(e => e.Contains("Invalid API key: ***", StringComparison.Ordinal));
        (await simulator.SubmitsAsync()).ShouldBeGreaterThan(0);
        output.WriteLine($"secrets=3 pages_and_answers={pages.Count} rows={rows.Count} files={files.Count} process_outputs={outputs.Count} "
            + $"echoed_key_answers={echo.Echoed} remote_requests_refused={remoteChecked} leaks=0");
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what, CliProcess serve)
    {
        for (var i = 0; i < 600; i++)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100);
        }

        throw new ShouldAssertException($"waited 60 s for {what}\n{ChaosRig.Tail(serve.Stderr)}");
    }

    private static async Task<List<string>> QueryAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<string>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.IsDBNull(0) ? "" : reader.GetString(0));
        }

        return values;
    }

    private static async Task<byte[]> ReadSharedAsync(string path)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    private static IPAddress? NetworkAddress() =>
        NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up && n.NetworkInterfaceType != NetworkInterfaceType.Loopback)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));

    /// <summary>A provider that answers every submit 401 with the key it was sent, as some real APIs do.</summary>
    private sealed class EchoingProvider : IAsyncDisposable
    {
        private readonly LoopbackServer _server;
        private int _echoed;

        private EchoingProvider() => _server = new LoopbackServer(AnswerAsync);

        public string BaseUrl => _server.BaseUrl;

        public int Echoed => Volatile.Read(ref _echoed);

        public static EchoingProvider Start() => new();

        public ValueTask DisposeAsync() => _server.DisposeAsync();

        private async Task AnswerAsync(HttpListenerContext context)
        {
            var token = context.Request.Headers["Authorization"]?.Replace("Bearer ", "", StringComparison.Ordinal) ?? "";
            var body = JsonSerializer.SerializeToUtf8Bytes(new { code = 401, message = $"Invalid API key: {token}", data = (object?)null });
            Interlocked.Increment(ref _echoed);
            context.Response.StatusCode = 401;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength64 = body.Length;
            await context.Response.OutputStream.WriteAsync(body);
        }
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace QwenBatch.Testing.Postgres;

/// <summary>
/// A real PostgreSQL for tests. <c>QWENBATCH_TEST_POSTGRES</c> names a server to use; without it, one private cluster is
/// started per test process (from <c>/usr/lib/postgresql/*/bin</c>) and stopped when the process exits. Tests isolate
/// themselves by creating a database each (<see cref="CreateDatabaseAsync"/>), so classes can run in parallel.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string EnvironmentVariable = "QWENBATCH_TEST_POSTGRES";

    private const string BinariesRoot = "/usr/lib/postgresql";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);
    private static readonly Lazy<Task<PostgresServer>> Instance = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly Cluster? _cluster;
    private readonly bool _dedicated;

    private PostgresServer(string adminConnectionString, Cluster? cluster = null, bool dedicated = false)
    {
        AdminConnectionString = adminConnectionString;
        _cluster = cluster;
        _dedicated = dedicated;
    }

    /// <summary>Connects as a superuser to the maintenance database.</summary>
    public string AdminConnectionString { get; }

    /// <summary>The server for this test process, started on first use.</summary>
    public static Task<PostgresServer> GetAsync() => Instance.Value;

    /// <summary>
    /// A private cluster for a test that restarts or otherwise disturbs its server, so tests of other classes running in
    /// parallel on the shared one are not affected. Dispose it to stop it.
    /// </summary>
    public static Task<PostgresServer> StartDedicatedAsync() => StartClusterAsync(dedicated: true);

    /// <summary>
    /// Restarts the cluster in place (<c>pg_ctl restart -m fast</c>, same folder, port and options): every open
    /// connection is cut, as when an operator restarts or a managed service fails over.
    /// </summary>
    public async Task RestartAsync()
    {
        var cluster = _cluster ?? throw new InvalidOperationException($"The server named by {EnvironmentVariable} is not this process's to restart.");
        // -l as at start: a server left writing to our redirected output would keep pg_ctl's pipes open for ever.
        await cluster.RunAsync(cluster.PgCtl, ["-D", cluster.Dir, "-l", Path.Combine(cluster.Dir, "log"), "-m", "fast", "-w", "restart"]);
    }

    /// <summary>
    /// Stops the cluster with <c>pg_ctl stop -m immediate</c> (no checkpoint, every backend killed at once, as when the
    /// server crashes or its host loses power); <see cref="StartAgainAsync"/> brings it back with crash recovery.
    /// </summary>
    public async Task CrashAsync()
    {
        var cluster = _cluster ?? throw new InvalidOperationException($"The server named by {EnvironmentVariable} is not this process's to stop.");
        await cluster.RunAsync(cluster.PgCtl, ["-D", cluster.Dir, "-m", "immediate", "-w", "stop"]);
    }

    /// <summary>Starts the cluster stopped by <see cref="CrashAsync"/> again, with the same folder, port and options.</summary>
    public async Task StartAgainAsync()
    {
        var cluster = _cluster ?? throw new InvalidOperationException($"The server named by {EnvironmentVariable} is not this process's to start.");
        await cluster.RunAsync(cluster.PgCtl, ["-D", cluster.Dir, "-l", Path.Combine(cluster.Dir, "log"), "-w", "-o", cluster.Options, "start"]);
    }

    public ValueTask DisposeAsync()
    {
        // The shared instance lives until the process exits; only dedicated clusters are stopped here.
        if (_dedicated)
        {
            NpgsqlConnection.ClearAllPools();
            _cluster?.Stop();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Creates an empty, uniquely named database and returns a connection string for it.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix)
    {
        var clean = new string(prefix.ToLowerInvariant().Where(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_').Take(30).ToArray());
        var name = $"{(clean.Length == 0 ? "test" : clean)}_{Guid.NewGuid():N}";
        await ExecuteAsync($"CREATE DATABASE \"{name}\"");
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name, IncludeErrorDetail = true }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing whatever is still connected to it.</summary>
    public async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        NpgsqlConnection.ClearAllPools();
        await ExecuteAsync($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<PostgresServer> StartAsync()
    {
        var given = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(given))
        {
            return new PostgresServer(new NpgsqlConnectionStringBuilder(given) { IncludeErrorDetail = true }.ConnectionString);
        }

        return await StartClusterAsync(dedicated: false);
    }

    private static async Task<PostgresServer> StartClusterAsync(bool dedicated)
    {
        var bin = FindBinaries();
        var dir = Directory.CreateTempSubdirectory("qwenbatch-pg-").FullName;
        var log = Path.Combine(dir, "log");

        // PostgreSQL refuses to run as root: as root (CI, containers) the cluster belongs to 'postgres' and its tools run
        // as that user.
        var asRoot = Environment.UserName == "root";
        var cluster = new Cluster(Path.Combine(bin, "pg_ctl"), dir, asRoot);
        try
        {
            if (asRoot)
            {
                await RunAsync("chown", ["postgres:postgres", dir], dir);
            }

            // --locale=C: no dependency on the locales installed in the container, and a deterministic text order.
            await cluster.RunAsync(Path.Combine(bin, "initdb"), ["-D", dir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
            var port = FreePort();
            // A dedicated cluster is one a test crashes (pg_ctl stop -m immediate): it keeps PostgreSQL's durable defaults, as
            // a production server does, since a commit lost in the crash would fake a lost write the product relies on. The
            // shared one trades durability for speed.
            var durability = dedicated ? "" : "-c fsync=off -c synchronous_commit=off -c full_page_writes=off ";
            var options = $"-p {port} -k {dir} -c listen_addresses=127.0.0.1 {durability}"
                + "-c max_connections=300 "
                // Statement counts per query for the benchmarks (issue #12); loaded at start, enabled per database.
                + "-c shared_preload_libraries=pg_stat_statements";
            // pg_ctl records -o in postmaster.opts, so a restart keeps the port and settings; a start after a stop is given them again.
            cluster.Options = options;
            await cluster.RunAsync(cluster.PgCtl, ["-D", dir, "-l", log, "-w", "-o", options, "start"]);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.Stop();

            var admin = new NpgsqlConnectionStringBuilder
            {
                Host = "127.0.0.1",
                Port = port,
                Username = "postgres",
                Database = "postgres",
                IncludeErrorDetail = true,
            };
            return new PostgresServer(admin.ConnectionString, cluster, dedicated);
        }
        catch (Exception ex)
        {
            var logText = File.Exists(log) ? await File.ReadAllTextAsync(log) : "(no log written)";
            cluster.Stop();
            throw new InvalidOperationException($"Could not start a test PostgreSQL in {dir}: {ex.Message}{Environment.NewLine}--- server log ---{Environment.NewLine}{logText}", ex);
        }
    }

    private static string FindBinaries()
    {
        var bin = Directory.Exists(BinariesRoot)
            ? Directory.GetDirectories(BinariesRoot)
                .Select(d => (Dir: d, Version: decimal.TryParse(Path.GetFileName(d), System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : -1))
                .Where(d => d.Version >= 0 && File.Exists(Path.Combine(d.Dir, "bin", "initdb")) && File.Exists(Path.Combine(d.Dir, "bin", "pg_ctl")))
                .OrderByDescending(d => d.Version)
                .Select(d => Path.Combine(d.Dir, "bin"))
                .FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            $"No PostgreSQL found under {BinariesRoot}/*/bin; install one or set {EnvironmentVariable} to a connection string.");
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static async Task RunAsync(string file, IEnumerable<string> args, string workingDirectory)
    {
        using var process = new Process
        {
            StartInfo = new ProcessStartInfo(file)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = workingDirectory,
            },
        };
        foreach (var arg in args)
        {
            process.StartInfo.ArgumentList.Add(arg);
        }

        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"'{file} {string.Join(' ', process.StartInfo.ArgumentList)}' did not finish within {CommandTimeout}.{Environment.NewLine}{output}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"'{file} {string.Join(' ', process.StartInfo.ArgumentList)}' exited with {process.ExitCode}.{Environment.NewLine}{output}");
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    /// <summary>The private cluster: its folder, and how to run its tools as the right user.</summary>
    private sealed class Cluster(string pgCtl, string dir, bool asRoot)
    {
        private int _stopped;

        public string PgCtl => pgCtl;

        public string Dir => dir;

        /// <summary>The server options given at first start (port, socket folder, settings).</summary>
        public string Options { get; set; } = "";

        public Task RunAsync(string tool, IEnumerable<string> args) =>
            asRoot
                ? PostgresServer.RunAsync("runuser", ["-u", "postgres", "--", tool, .. args], dir)
                : PostgresServer.RunAsync(tool, args, dir);

        /// <summary>Runs at process exit: nothing in the cluster is worth a clean shutdown.</summary>
        public void Stop()
        {
            if (Interlocked.Exchange(ref _stopped, 1) == 1)
            {
                return;
            }

            try
            {
                if (File.Exists(Path.Combine(dir, "postmaster.pid")))
                {
                    RunAsync(pgCtl, ["-D", dir, "-m", "immediate", "-W", "stop"]).Wait(TimeSpan.FromSeconds(30));

                    // The test host is killed soon after it exits: do not wait on pg_ctl's polling, watch for the lock file.
                    for (var i = 0; i < 100 && File.Exists(Path.Combine(dir, "postmaster.pid")); i++)
                    {
                        Task.Delay(20).Wait();
                    }
                }
            }
            catch (Exception)
            {
                // Best effort: the folder goes anyway, and a postmaster that lost its folder shuts itself down.
            }

            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception)
            {
                // Best effort: it is a temp folder.
            }
        }
    }
}

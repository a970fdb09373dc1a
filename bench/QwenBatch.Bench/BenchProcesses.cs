using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace QwenBatch.Bench;

/// <summary>
/// What the process-level benchmarks (sdk-race, memory) share: starting the built CLI and the simulator as real
/// processes, reading the simulator's /_sim/stats, and reading a child's peak RSS from /proc.
/// </summary>
internal static class BenchProcesses
{
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "QwenBatch.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("QwenBatch.sln not found");
    }

    /// <summary>The CLI built next to this benchmark (the project reference builds it first).</summary>
    public static string Cli() => Path.Combine(RepositoryRoot(), "src", "QwenBatch.Cli", "bin", "Release", "net10.0", "qwenbatch.dll");

    /// <summary>Starts <c>dotnet exec qwenbatch.dll args…</c>; output is drained (kept only when <paramref name="output"/> is given).</summary>
    public static Process StartCli(string work, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> args, List<string>? output = null) =>
        Start("dotnet", work, environment, ["exec", Cli(), .. args], output);

    public static Process Start(string file, string work, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> args, List<string>? output = null)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start");
        process.OutputDataReceived += (_, e) => Keep(output, e.Data);
        process.ErrorDataReceived += (_, e) => Keep(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>A simulator process on a free loopback port, ready (its stats answer) when this returns.</summary>
    public static async Task<Simulator> StartSimulatorAsync(string work, params string[] options)
    {
        var port = FreePort();
        var process = StartCli(work, new Dictionary<string, string> { ["Serilog__MinimumLevel__Default"] = "Warning" }, ["simulate", "--port", $"{port}", .. options]);
        var simulator = new Simulator(process, new Uri($"http://127.0.0.1:{port}/"));
        for (var i = 0; i < 300 && await simulator.TryStatsAsync() is null; i++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the simulator exited with {process.ExitCode}");
            }

            await Task.Delay(100);
        }

        return await simulator.TryStatsAsync() is null ? throw new TimeoutException("the simulator did not answer /_sim/stats") : simulator;
    }

    /// <summary>Peak resident set (VmHWM) of a running process in bytes, or null once it has exited.</summary>
    public static long? PeakRss(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void Keep(List<string>? output, string? line)
    {
        if (output is not null && line is not null)
        {
            lock (output)
            {
                output.Add(line);
            }
        }
    }

    /// <summary>One simulator process; disposing stops it.</summary>
    internal sealed class Simulator(Process process, Uri baseUrl) : IDisposable
    {
        private readonly HttpClient _http = new();

        public Uri BaseUrl => baseUrl;

        public async Task<JsonElement?> TryStatsAsync()
        {
            try
            {
                return JsonDocument.Parse(await _http.GetStringAsync(new Uri(baseUrl, "_sim/stats"))).RootElement;
            }
            catch (HttpRequestException)
            {
                return null;
            }
        }

        /// <summary>Every API request that reached the simulator with a key (429s included; file downloads excluded).</summary>
        public static long Requests(JsonElement stats) =>
            stats.TryGetProperty("keys", out var keys) && keys.ValueKind == JsonValueKind.Object
                ? keys.EnumerateObject().Sum(k => k.Value.GetProperty("requests").GetInt64())
                : 0;

        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            process.Dispose();
            _http.Dispose();
        }
    }
}

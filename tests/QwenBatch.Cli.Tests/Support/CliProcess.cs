using System.Diagnostics;
using System.Text;

namespace QwenBatch.Cli.Tests.Support;

/// <summary>The result of one qwenbatch process.</summary>
internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;
}

/// <summary>Runs the built qwenbatch CLI as a real process, the way a user runs it.</summary>
internal sealed class CliProcess : IAsyncDisposable
{
    private static readonly TimeSpan MaxRun = TimeSpan.FromMinutes(3);
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private int _disposed;

    private CliProcess(Process process)
    {
        _process = process;
    }

    /// <summary>The process id, still known after the process ended and was disposed (a killed worker's server id carries it).</summary>
    public int Id { get; private set; }

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>
    /// True when GNU env (coreutils 8.31+) can start the CLI with SIGINT and SIGQUIT at their default disposition. A test
    /// runner started in the background — an asynchronous command of a non-interactive shell, as a CI script may start it
    /// — hands its children those signals ignored, and .NET leaves an ignored SIGINT ignored: the CLI under test would
    /// never see its Ctrl-C (a fresh-clone run of the suite started that way ran the interrupted batch to the end, twice).
    /// A user's terminal gives the CLI the default disposition, which this restores.
    /// </summary>
    private static bool RestoresSignals { get; } = OperatingSystem.IsLinux() && EnvAccepts(DefaultSignals);

    private const string DefaultSignals = "--default-signal=INT,QUIT";

    public static CliProcess Start(string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var command = CommandLine(args);
        var info = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info };
        var cli = new CliProcess(process);
        process.OutputDataReceived += (_, e) => cli.Append(cli._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => cli.Append(cli._stderr, e.Data);
        process.Start();
        cli.Id = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cli;
    }

    /// <summary>The program and arguments that start the built CLI with <paramref name="args"/>, as a user's shell would.</summary>
    public static IReadOnlyList<string> CommandLine(IEnumerable<string> args)
    {
        // env execs dotnet in its own process, so the process id stays the CLI's.
        IEnumerable<string> start = RestoresSignals ? ["env", DefaultSignals, "dotnet"] : ["dotnet"];
        return [.. start, "exec", CliDll(), .. args];
    }

    public static async Task<CliResult> RunAsync(string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        await using var cli = Start(workingDirectory, environment, args);
        return await cli.WaitAsync();
    }

    public async Task<CliResult> WaitAsync()
    {
        using var timeout = new CancellationTokenSource(MaxRun);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"qwenbatch did not exit within {MaxRun}. Output so far:\n{_stdout}\n{_stderr}");
        }

        _process.WaitForExit();
        lock (_stdout)
        {
            lock (_stderr)
            {
                return new CliResult(_process.ExitCode, _stdout.ToString(), _stderr.ToString());
            }
        }
    }

    /// <summary>Sends SIGINT, as Ctrl-C in a terminal does.</summary>
    public void Interrupt() => Signal("-INT");

    /// <summary>Sends SIGTERM, as systemd, Docker and Kubernetes do to stop a process.</summary>
    public void Terminate() => Signal("-TERM");

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", [signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return ValueTask.CompletedTask;
        }

        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Append(StringBuilder target, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (target)
        {
            target.AppendLine(line);
        }
    }

    private static string CliDll()
    {
        // Built alongside the tests (the test project references the CLI), in the same configuration.
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = Path.Combine(RepositoryRoot, "src", "QwenBatch.Cli", "bin", configuration, "net10.0", "qwenbatch.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build the CLI first; {dll} is missing.");
    }

    private static bool EnvAccepts(string option)
    {
        try
        {
            using var env = Process.Start(new ProcessStartInfo("env", [option, "true"]) { RedirectStandardError = true, UseShellExecute = false })!;
            env.WaitForExit();
            return env.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "QwenBatch.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("QwenBatch.sln not found above the test folder.");
    }
}

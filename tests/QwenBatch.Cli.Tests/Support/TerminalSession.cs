using System.Diagnostics;
using System.Globalization;

namespace QwenBatch.Cli.Tests.Support;

/// <summary>
/// The built CLI in a real pseudo-terminal of a given size: a tmux pane, read back as the screen a person sees
/// (<c>capture-pane</c>), with keys sent as a person types them. Each session has its own tmux server, and the pane stays
/// on screen after the CLI exits so its last screen can be read.
/// </summary>
/// <remarks>
/// The CLI runs under a shell that writes its exit code to a file: tmux 3.3 now and then leaves an exited pane process
/// unreaped, so it never learns the status. The shell survives Ctrl-C (it runs a no-op trap after the CLI ends), while
/// the CLI gets SIGINT as a person's shell gives it.
/// </remarks>
internal sealed class TerminalSession : IAsyncDisposable
{
    private const string Session = "qwenbatch";
    private static readonly TimeSpan MaxRun = TimeSpan.FromMinutes(3);
    private readonly string _socket = "qwenbatch-test-" + Guid.NewGuid().ToString("N");
    private readonly string _exitFile;
    private string? _socketPath;

    private TerminalSession(string exitFile)
    {
        _exitFile = exitFile;
    }

    /// <summary>Starts <c>qwenbatch args…</c> in a <paramref name="width"/>×<paramref name="height"/> terminal.</summary>
    public static async Task<TerminalSession> StartAsync(string workingDirectory, int width, int height, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        // No status bar, so the pane is the whole terminal; the pane outlives the CLI so its screen can be read.
        var config = Path.Combine(workingDirectory, "tmux.conf");
        await File.WriteAllTextAsync(config, "set -g status off\nset -g remain-on-exit on\nset -g default-shell /bin/sh\n");
        var session = new TerminalSession(Path.Combine(workingDirectory, $"exit-code-{Guid.NewGuid():N}"));
        List<string> command = ["-f", config, "new-session", "-d", "-s", Session, "-c", workingDirectory,
            "-x", width.ToString(CultureInfo.InvariantCulture), "-y", height.ToString(CultureInfo.InvariantCulture)];
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            command.AddRange(["-e", $"{key}={value}"]);
        }

        command.Add($"trap : INT; {string.Join(' ', CliProcess.CommandLine(args).Select(Quote))}; echo $? > {Quote(session._exitFile)}");
        await session.TmuxAsync([.. command]);
        session._socketPath = (await session.TmuxAsync("display-message", "-p", "#{socket_path}")).Trim();
        return session;
    }

    /// <summary>The rows on screen now, as a person reads them (trailing blanks and tmux's dead-pane notice left out).</summary>
    public async Task<IReadOnlyList<string>> ScreenAsync()
    {
        var rows = (await TmuxAsync("capture-pane", "-p", "-t", Session)).Split('\n').Select(r => r.TrimEnd()).ToList();
        rows.RemoveAll(r => r.StartsWith("Pane is dead", StringComparison.Ordinal));
        while (rows.Count > 0 && rows[^1].Length == 0)
        {
            rows.RemoveAt(rows.Count - 1);
        }

        return rows;
    }

    /// <summary>Waits until the screen shows what <paramref name="shows"/> looks for, and returns that screen.</summary>
    public async Task<IReadOnlyList<string>> WaitForScreenAsync(Func<IReadOnlyList<string>, bool> shows)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var screen = await ScreenAsync();
            if (shows(screen))
            {
                return screen;
            }

            if (clock.Elapsed > MaxRun || await ExitCodeAsync() is not null)
            {
                throw new TimeoutException($"The screen never showed what was waited for:\n{string.Join('\n', screen)}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Types keys into the terminal, in tmux's names (<c>C-c</c> is Ctrl-C).</summary>
    public Task SendKeysAsync(string keys) => TmuxAsync("send-keys", "-t", Session, keys);

    /// <summary>Waits for the CLI to exit and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync()
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await ExitCodeAsync() is { } code)
            {
                return code;
            }

            if (clock.Elapsed > MaxRun)
            {
                throw new TimeoutException($"qwenbatch did not exit within {MaxRun}. Screen:\n{string.Join('\n', await ScreenAsync())}");
            }

            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await TmuxAsync("kill-server");
        }
        catch (InvalidOperationException)
        {
            // The server is gone already.
        }

        // A killed server leaves its socket file behind.
        if (_socketPath is not null)
        {
            File.Delete(_socketPath);
        }
    }

    /// <summary>The CLI's exit code once it has exited, else null.</summary>
    private async Task<int?> ExitCodeAsync()
    {
        var text = File.Exists(_exitFile) ? await File.ReadAllTextAsync(_exitFile) : "";
        return text.EndsWith('\n') ? int.Parse(text, CultureInfo.InvariantCulture) : null;
    }

    private static string Quote(string arg) => "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private async Task<string> TmuxAsync(params string[] args)
    {
        var info = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-L");
        info.ArgumentList.Add(_socket);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        Process tmux;
        try
        {
            tmux = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("tmux is missing; scripts/test.sh installs it (apt-get install tmux).", ex);
        }

        using (tmux)
        {
            var stdout = tmux.StandardOutput.ReadToEndAsync();
            var stderr = tmux.StandardError.ReadToEndAsync();
            await tmux.WaitForExitAsync();
            return tmux.ExitCode == 0 ? await stdout : throw new InvalidOperationException($"tmux {string.Join(' ', args)}: {await stderr}");
        }
    }
}

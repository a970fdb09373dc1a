using System.Runtime.InteropServices;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// Ctrl-C or SIGTERM once: stop taking work, let in-flight steps record their results, exit 130 with state kept.
/// Ctrl-C twice: exit at once (leases expire and are rescued; nothing is lost).
/// </summary>
internal sealed class ShutdownSignal : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly PosixSignalRegistration _sigterm;
    private int _presses;

    public ShutdownSignal()
    {
        Console.CancelKeyPress += OnCancelKeyPress;
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            _stopping.Cancel();
        });
    }

    public CancellationToken Token => _stopping.Token;

    public bool Requested => _stopping.IsCancellationRequested;

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        _sigterm.Dispose();
        _stopping.Dispose();
    }

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        if (Interlocked.Increment(ref _presses) > 1)
        {
            Console.Error.WriteLine("Stopping now; a rerun resumes the batch.");
            Environment.Exit(ExitCodes.Interrupted);
        }

        e.Cancel = true;
        Console.Error.WriteLine("Stopping: finishing steps in flight (Ctrl-C again to quit at once)…");
        _stopping.Cancel();
    }
}

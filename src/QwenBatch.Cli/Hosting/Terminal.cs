using Spectre.Console;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// The Spectre console for stdout. When stdout is not a terminal (a pipe, CI, a log file) it writes plain text, no
/// colours, at a width wide enough that tables do not wrap into unreadable columns.
/// </summary>
internal static class Terminal
{
    private const int RedirectedWidth = 200;

    public static IAnsiConsole Out { get; } = Create(Console.Out, Console.IsOutputRedirected);

    /// <summary>The console for progress and messages (stderr), so stdout stays clean for results and JSON.</summary>
    public static IAnsiConsole Error { get; } = Create(Console.Error, Console.IsErrorRedirected);

    private static IAnsiConsole Create(TextWriter writer, bool redirected)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
        });
        if (redirected)
        {
            console.Profile.Width = RedirectedWidth;
        }

        return console;
    }
}

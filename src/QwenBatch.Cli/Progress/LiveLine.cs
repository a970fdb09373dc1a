using System.Text;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace QwenBatch.Cli.Progress;

/// <summary>
/// A line kept at the bottom of the terminal and redrawn in place, with everything else printed above it. While it is on
/// screen it is the only writer of the terminal: <see cref="Console.Error"/> (where Serilog's console sink and the Ctrl-C
/// notices write) and <see cref="Console.Out"/>, when it is the same terminal, are replaced by writers that hand it their
/// complete lines; it clears its row, prints them there, and draws itself again below them. So a log event never lands
/// inside the line, and no row keeps a fragment of an earlier frame.
/// </summary>
/// <remarks>
/// Spectre's live display (0.49) is not used for this: a one-line target climbs one row at each refresh (it sends "cursor
/// up 0", which terminals read as 1), a line written above it is not cleared first, and a refresh takes the display's lock
/// before the console's while a write from another thread takes them the other way round.
/// </remarks>
internal sealed class LiveLine
{
    /// <summary>To the start of the row, then erase it: the cursor is always on the line's row, after the frame.</summary>
    private const string ClearRow = "\r\u001b[2K";

    private readonly Lock _gate = new();
    private readonly IAnsiConsole _terminal;
    private readonly TextWriter _terminalWriter;
    private readonly TextWriter _previousError;
    private readonly TextWriter _previousOut;
    private readonly List<Above> _writers = [];
    private Func<int, IRenderable> _frame;
    private bool _ended;

    private LiveLine(IAnsiConsole terminal, Func<int, IRenderable> frame)
    {
        _terminal = terminal;
        _terminalWriter = terminal.Profile.Out.Writer;
        _previousError = Console.Error;
        _previousOut = Console.Out;
        _frame = frame;
    }

    /// <summary>
    /// Draws the first frame on <paramref name="terminal"/> (stderr) and takes the console's writers until <see cref="End"/>.
    /// A frame is drawn for the terminal's width at that moment and must fit it in one row.
    /// </summary>
    public static LiveLine Show(IAnsiConsole terminal, Func<int, IRenderable> frame)
    {
        var line = new LiveLine(terminal, frame);
        lock (line._gate)
        {
            line.Draw();
            line._writers.Add(new Above(line, line._previousError));
            Console.SetError(line._writers[^1]);
            if (!Console.IsOutputRedirected)
            {
                line._writers.Add(new Above(line, line._previousOut));
                Console.SetOut(line._writers[^1]);
            }

            // A second Ctrl-C exits at once: the shell's prompt must start on a row of its own, not after the frame.
            AppDomain.CurrentDomain.ProcessExit += line.OnProcessExit;
        }

        return line;
    }

    public void Update(Func<int, IRenderable> frame)
    {
        lock (_gate)
        {
            if (!_ended)
            {
                _frame = frame;
                Draw();
            }
        }
    }

    /// <summary>
    /// Draws the last frame (<paramref name="last"/>, or the current one), moves below it, writes <paramref name="below"/>
    /// there on stdout, and gives the console its writers back: what others write meanwhile waits, so nothing comes
    /// between the frame and that line. Only the first call does anything.
    /// </summary>
    public void End(Func<int, IRenderable>? last = null, string? below = null)
    {
        lock (_gate)
        {
            if (_ended)
            {
                return;
            }

            _frame = last ?? _frame;
            foreach (var writer in _writers.Where(w => w.Pending.Length > 0))
            {
                writer.Pending.AppendLine();
                PrintAbove(writer);
            }

            Draw();
            _terminalWriter.WriteLine();
            _terminalWriter.Flush();
            if (below is not null)
            {
                _previousOut.WriteLine(below);
                _previousOut.Flush();
            }

            _ended = true;
            Console.SetError(_previousError);
            if (_writers.Count > 1)
            {
                Console.SetOut(_previousOut);
            }

            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        }
    }

    private void OnProcessExit(object? sender, EventArgs e) => End();

    private void Draw()
    {
        _terminalWriter.Write(ClearRow);
        _terminal.Write(_frame(_terminal.Profile.Width));
    }

    private void Write(Above writer, string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        lock (_gate)
        {
            if (_ended)
            {
                // A writer fetched from Console before the line ended: the terminal is free again.
                writer.Inner.Write(text);
                writer.Inner.Flush();
                return;
            }

            // A partial line waits for its end: printed now, the next frame would be drawn after it, on its row.
            writer.Pending.Append(text);
            if (text.Contains('\n', StringComparison.Ordinal))
            {
                PrintAbove(writer);
                Draw();
            }
        }
    }

    /// <summary>Prints the writer's complete lines on the line's row, which leaves the cursor at the start of a fresh row.</summary>
    private void PrintAbove(Above writer)
    {
        var pending = writer.Pending.ToString();
        var complete = pending.LastIndexOf('\n') + 1;
        _terminalWriter.Write(ClearRow);
        _terminalWriter.Flush();
        writer.Inner.Write(pending[..complete]);
        writer.Inner.Flush();
        writer.Pending.Remove(0, complete);
    }

    /// <summary>A console writer while the line is on screen; it hands everything to the line.</summary>
    private sealed class Above(LiveLine line, TextWriter inner) : TextWriter
    {
        public TextWriter Inner { get; } = inner;

        public StringBuilder Pending { get; } = new();

        public override Encoding Encoding => Inner.Encoding;

        public override void Write(char value) => line.Write(this, value.ToString());

        public override void Write(string? value) => line.Write(this, value);

        public override void Write(char[] buffer, int index, int count) => line.Write(this, new string(buffer, index, count));

        public override void WriteLine(string? value) => line.Write(this, value + NewLine);

        public override void WriteLine() => line.Write(this, NewLine);
    }
}

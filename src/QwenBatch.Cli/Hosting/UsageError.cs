using System.CommandLine;
using System.CommandLine.Parsing;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// Wrong usage: one clear line naming what is wrong, the command's usage line, and where the full help is; exit 1. The
/// parser's default (every error, then the whole help page) buries the one line that matters.
/// </summary>
internal static class UsageError
{
    public static async Task<int> PrintAsync(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var path = Path(parse.CommandResult);
        // "Required command was not provided" comes first for 'qwenbatch frob'; the unrecognized word is the useful line.
        var error = parse.Errors.OrderBy(e => e.Message.StartsWith("Required command", StringComparison.Ordinal) ? 1 : 0).First();
        await Console.Error.WriteLineAsync($"error: {error.Message}");
        await Console.Error.WriteLineAsync($"Usage: {Usage(command, path)}");
        await Console.Error.WriteLineAsync($"Run '{path} --help' for the options and exit codes.");
        return ExitCodes.UsageOrConfiguration;
    }

    private static string Path(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is not null; r = r.Parent)
        {
            if (r is CommandResult c)
            {
                names.Insert(0, c.Command is RootCommand ? "qwenbatch" : c.Command.Name);
            }
        }

        return string.Join(' ', names);
    }

    private static string Usage(Command command, string path)
    {
        var parts = new List<string> { path };
        if (command.Subcommands.Count > 0)
        {
            parts.Add("<command>");
        }

        parts.AddRange(command.Arguments.Where(a => !a.Hidden).Select(a => a.Arity.MinimumNumberOfValues == 0 ? $"[{a.Name}]" : $"<{a.Name}>"));
        parts.Add("[options]");
        return string.Join(' ', parts);
    }
}

using System.Globalization;
using System.Text;

namespace QwenBatch.Outputs;

/// <summary>
/// File names for outputs, from the manifest's <c>output</c> template (<c>{id}</c>, <c>{k}</c>, <c>{ext}</c> and manifest
/// variables) or by default <c>&lt;id&gt;.&lt;ext&gt;</c>, or <c>&lt;id&gt;-&lt;k&gt;.&lt;ext&gt;</c> when a job has several.
/// Whatever the template or the id says, the name stays inside the batch folder: only the template's own '/' makes
/// sub-folders, every segment is sanitized, and <see cref="Resolve"/> checks the full path.
/// </summary>
public static class OutputNames
{
    /// <summary>The placeholders filled when a file is written, not when the manifest is read.</summary>
    public static readonly IReadOnlyList<string> Reserved = ["id", "k", "ext"];

    private const int MaxSegmentChars = 150;

    private static readonly HashSet<string> ReservedDeviceNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$",
        "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
        "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    };

    public static string For(string jobKey, int index, int count, string extension) => For(null, jobKey, index, count, extension, null);

    /// <summary>
    /// The relative path ('/'-separated) of output <paramref name="index"/> (0-based) of <paramref name="count"/>.
    /// A template without <c>{k}</c> gets <c>-{k}</c> before the extension when there are several outputs, and one without
    /// <c>{ext}</c> gets <c>.{ext}</c>, so outputs of one job never overwrite each other and always carry their real type.
    /// </summary>
    /// <param name="revision">
    /// The job's revision of its manifest id: from 2 on, <c>-r&lt;revision&gt;</c> goes before the extension, so the
    /// outputs of a changed row never overwrite, or mix with, the files of the job it replaced.
    /// </param>
    public static string For(string? template, string jobKey, int index, int count, string extension, IReadOnlyDictionary<string, string>? variables, int revision = 1)
    {
        template = string.IsNullOrWhiteSpace(template) ? "{id}" : template;
        if (revision > 1)
        {
            var tag = "-r" + revision.ToString(CultureInfo.InvariantCulture);
            template = Has(template, "ext") ? InsertBeforeExt(template, tag) : template + tag;
        }

        if (count > 1 && !Has(template, "k"))
        {
            template = Has(template, "ext") ? InsertBeforeExt(template, "-{k}") : template + "-{k}";
        }

        if (!Has(template, "ext"))
        {
            template += ".{ext}";
        }

        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in variables ?? new Dictionary<string, string>())
        {
            values[name] = value;
        }

        values["id"] = jobKey;
        values["k"] = (index + 1).ToString(CultureInfo.InvariantCulture);
        values["ext"] = Safe(extension);
        var filled = Fill(template, values);
        var raw = filled.Split('/', StringSplitOptions.RemoveEmptyEntries).ToList();
        if (raw.Count == 0 || raw[^1].StartsWith('.'))
        {
            // "/", "{x}/.{ext}": a name with no stem is the job's id, not a hidden file or a bare extension.
            raw = [.. raw.SkipLast(raw.Count == 0 ? 0 : 1), Safe(jobKey) + "." + values["ext"]];
        }

        return string.Join('/', raw.Select(Segment));
    }

    /// <summary>
    /// The absolute path of <paramref name="relative"/> under <paramref name="directory"/>; throws when it would be
    /// anywhere else, lexically or through a symbolic link below the folder (a last line of defence:
    /// <see cref="For(string?, string, int, int, string, IReadOnlyDictionary{string, string}?, int)"/> never makes a climbing name).
    /// </summary>
    public static string Resolve(string directory, string relative)
    {
        var root = Path.GetFullPath(directory);
        var full = Path.GetFullPath(Path.Combine(root, relative));
        var prefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        if (Path.IsPathRooted(relative) || !full.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"The output name '{relative}' is outside the batch folder.");
        }

        // A folder of the name may already exist as a link leading elsewhere: writing through it would escape the folder.
        if (!Paths.ConfinedPath.IsInside(root, full))
        {
            throw new InvalidDataException($"The output name '{relative}' leads outside the batch folder through a symbolic link.");
        }

        return full;
    }

    /// <summary>
    /// Keeps letters, digits, '-', '_' and '.'; anything else becomes '_', and a name made only of dots cannot climb out of
    /// the batch folder.
    /// </summary>
    public static string Safe(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        }

        var safe = builder.ToString().Trim('.');
        return safe.Length == 0 ? "_" : safe;
    }

    /// <summary>One path segment: sanitized, not a device name (CON, NUL.png…), not too long for a file system.</summary>
    private static string Segment(string raw)
    {
        var safe = Safe(raw);
        if (safe.Length > MaxSegmentChars)
        {
            var dot = safe.LastIndexOf('.');
            var ext = dot > 0 && safe.Length - dot <= 6 ? safe[dot..] : "";
            safe = safe[..(MaxSegmentChars - ext.Length)] + ext;
        }

        var stem = safe.Split('.')[0];
        return ReservedDeviceNames.Contains(stem) ? "_" + safe : safe;
    }

    private static bool Has(string template, string name) => template.Contains("{" + name + "}", StringComparison.OrdinalIgnoreCase);

    private static string InsertBeforeExt(string template, string text)
    {
        var at = template.IndexOf("{ext}", StringComparison.OrdinalIgnoreCase);
        var dot = at > 0 && template[at - 1] == '.' ? at - 1 : at;
        return template[..dot] + text + template[dot..];
    }

    /// <summary>Fills placeholders with sanitized values (a value's own '/' or '..' never makes a folder); unknown names become '_'.</summary>
    private static string Fill(string template, Dictionary<string, string> values) =>
        Manifests.Template.Replace(template, name => values.TryGetValue(name, out var value) ? Safe(value) : "_").Replace('\\', '/');
}

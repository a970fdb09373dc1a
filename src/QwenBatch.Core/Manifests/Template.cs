using System.Text;

namespace QwenBatch.Manifests;

/// <summary>
/// <c>{name}</c> placeholders: one scanner for manifest templates (prompts, ids) and output file name templates.
/// </summary>
internal static class Template
{
    private const int MaxNameLength = 64;

    /// <summary>The filled text; names with no value are left as written and returned in <paramref name="unknown"/>.</summary>
    public static string Apply(string text, IReadOnlyDictionary<string, string> values, ref List<string>? unknown) =>
        text.Contains('{', StringComparison.Ordinal) ? Fill(text, values, ref unknown) : text;

    // Apart from Apply: a lambda capturing a parameter makes the method allocate its closure on entry, and most cells
    // have no placeholder at all.
    private static string Fill(string text, IReadOnlyDictionary<string, string> values, ref List<string>? unknown)
    {
        List<string>? missing = null;
        var filled = Replace(text, name =>
        {
            if (name.Length is > 0 and <= MaxNameLength && !name.Contains('{', StringComparison.Ordinal))
            {
                if (values.TryGetValue(name, out var value))
                {
                    return value;
                }

                (missing ??= []).Add(name);
            }

            return null;
        });
        if (missing is not null)
        {
            (unknown ??= []).AddRange(missing);
        }

        return filled;
    }

    /// <summary>
    /// Replaces each <c>{name}</c> (name trimmed) with what <paramref name="fill"/> returns for it; null leaves the
    /// placeholder as written. A '{' without a closing '}' is plain text.
    /// </summary>
    public static string Replace(string text, Func<string, string?> fill)
    {
        if (!text.Contains('{', StringComparison.Ordinal))
        {
            return text;
        }

        var builder = new StringBuilder(text.Length + 32);
        var pos = 0;
        while (pos < text.Length)
        {
            var open = text.IndexOf('{', pos);
            var close = open < 0 ? -1 : text.IndexOf('}', open + 1);
            if (open < 0 || close < 0)
            {
                builder.Append(text, pos, text.Length - pos);
                break;
            }

            builder.Append(text, pos, open - pos);
            var name = text.AsSpan(open + 1, close - open - 1).Trim().ToString();
            if (fill(name) is { } value)
            {
                builder.Append(value);
            }
            else
            {
                builder.Append(text, open, close - open + 1);
            }

            pos = close + 1;
        }

        return builder.ToString();
    }
}

using System.Text;

namespace QwenBatch.Manifests;

/// <summary>Fills <c>{name}</c> placeholders from a row's columns and fan-out variables (names match case-insensitively).</summary>
internal static class Template
{
    private const int MaxNameLength = 64;

    /// <summary>The filled text; names with no value are left as written and returned in <paramref name="unknown"/>.</summary>
    public static string Apply(string text, IReadOnlyDictionary<string, string> values, ref List<string>? unknown)
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

            var name = text.AsSpan(open + 1, close - open - 1).Trim().ToString();
            builder.Append(text, pos, open - pos);
            if (name.Length is > 0 and <= MaxNameLength && !name.Contains('{', StringComparison.Ordinal) && values.TryGetValue(name, out var value))
            {
                builder.Append(value);
            }
            else
            {
                if (name.Length is > 0 and <= MaxNameLength && !name.Contains('{', StringComparison.Ordinal))
                {
                    (unknown ??= []).Add(name);
                }

                builder.Append(text, open, close - open + 1);
            }

            pos = close + 1;
        }

        return builder.ToString();
    }
}

using System.Text;

namespace QwenBatch.Outputs;

/// <summary>File names for outputs: <c>&lt;id&gt;.&lt;ext&gt;</c>, or <c>&lt;id&gt;-&lt;k&gt;.&lt;ext&gt;</c> when a job has several.</summary>
public static class OutputNames
{
    public static string For(string jobKey, int index, int count, string extension) =>
        count == 1 ? $"{Safe(jobKey)}.{extension}" : $"{Safe(jobKey)}-{index + 1}.{extension}";

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
}

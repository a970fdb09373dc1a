using System.Text.RegularExpressions;

namespace QwenBatch.Secrets;

/// <summary>
/// The one place secrets are taken out of text: every configured API key and database password, wherever it appears
/// (a message, a property, an exception's text, a URL's query), and the password part of any URL's user-info. Logs,
/// console errors and stored job errors all pass through it, so a key can only leak through a path that bypasses it.
/// </summary>
public sealed partial class SecretRedactor
{
    public const string Mask = "***";

    /// <summary>Shorter values are not treated as secrets: masking "a" or "1" everywhere would garble every line.</summary>
    private const int MinSecretLength = 6;

    private readonly string[] _secrets;

    public SecretRedactor(IEnumerable<string?> secrets)
    {
        // Longest first, so a secret that contains another is masked whole.
        _secrets = secrets.Where(s => s is { Length: >= MinSecretLength }).Select(s => s!).Distinct(StringComparer.Ordinal)
            .OrderByDescending(s => s.Length).ToArray();
    }

    /// <summary>A redactor that knows no secrets (still masks URL passwords).</summary>
    public static SecretRedactor None { get; } = new([]);

    public int Count => _secrets.Length;

    /// <summary>The text with every known secret and every URL password replaced by <see cref="Mask"/>.</summary>
    public string Redact(string text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text;
        }

        foreach (var secret in _secrets)
        {
            if (text.Contains(secret, StringComparison.Ordinal))
            {
                text = text.Replace(secret, Mask, StringComparison.Ordinal);
            }
        }

        return text.Contains("://", StringComparison.Ordinal) ? UrlPassword().Replace(text, "://$1:" + Mask + "@") : text;
    }

    /// <summary>True when <see cref="Redact"/> would change the text.</summary>
    public bool Contains(string text) =>
        !string.IsNullOrEmpty(text) && (_secrets.Any(s => text.Contains(s, StringComparison.Ordinal)) || (text.Contains("://", StringComparison.Ordinal) && UrlPassword().IsMatch(text)));

    /// <summary>scheme://user:password@host → the password part.</summary>
    [GeneratedRegex(@"://([^/:@\s]+):(?!\*\*\*@)[^/@\s]+@", RegexOptions.CultureInvariant)]
    private static partial Regex UrlPassword();
}

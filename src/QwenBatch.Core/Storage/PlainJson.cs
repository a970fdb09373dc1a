using System.Buffers;
using System.Globalization;
using System.Text;

namespace QwenBatch.Storage;

/// <summary>
/// JSON written straight into bytes, for text that needs no escaping: printable ASCII other than the characters the
/// default encoder escapes (<c>" \ &lt; &gt; &amp; ' + `</c>). <see cref="System.Text.Json.Utf8JsonWriter"/> with the default
/// encoder writes such text as it is, so the bytes are the same; text with any other character goes through the writer.
/// An import writes two documents per job (its content hash's and its stored spec), and the writer's per-call state
/// checks, escaping scans and transcoding were about a third of planning a job.
/// </summary>
internal static class PlainJson
{
    private static readonly SearchValues<char> PlainChars = SearchValues.Create(
        Enumerable.Range(0x20, 0x7F - 0x20).Select(c => (char)c).Where(c => c is not ('"' or '\\' or '<' or '>' or '&' or '\'' or '+' or '`')).ToArray());

    /// <summary>Whether the text (or null) is written the same with no escaping.</summary>
    public static bool IsPlain(string? text) => text is null || !text.AsSpan().ContainsAnyExcept(PlainChars);

    public static bool IsPlain(IReadOnlyList<string>? texts)
    {
        if (texts is null)
        {
            return true;
        }

        for (var i = 0; i < texts.Count; i++)
        {
            if (!IsPlain(texts[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Whether a spec's texts are plain — its variables aside, which the content hash does not cover: the one list of
    /// them for the hash's writer and the stored spec's.
    /// </summary>
    public static bool IsPlain(Edits.EditSpec spec) =>
        IsPlain(spec.Prompt) && IsPlain(spec.Images) && IsPlain(spec.NegativePrompt) && IsPlain(spec.Size) && IsPlain(spec.OutputFormat) && IsPlain(spec.Output);

    public static bool IsPlain(IReadOnlyDictionary<string, string>? texts) => texts switch
    {
        null => true,
        Dictionary<string, string> dictionary => AllPlain(dictionary.GetEnumerator()),
        _ => AllPlain(texts.GetEnumerator()),
    };

    // Generic over the enumerator, so a dictionary's (a struct) is not boxed: two allocations a job otherwise.
    private static bool AllPlain<TEnumerator>(TEnumerator pairs)
        where TEnumerator : IEnumerator<KeyValuePair<string, string>>
    {
        using (pairs)
        {
            while (pairs.MoveNext())
            {
                if (!IsPlain(pairs.Current.Key) || !IsPlain(pairs.Current.Value))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Bytes as they are: punctuation and property names (<c>"name":</c>).</summary>
    public static void Raw(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> utf8)
    {
        // Not the IBufferWriter extension: that calls GetSpan and Advance through the interface, for a few bytes each time.
        utf8.CopyTo(output.GetSpan(utf8.Length));
        output.Advance(utf8.Length);
    }

    // Properties: `name` is the bytes before the value (a comma when it is not the first, the quoted name, the colon).
    // ...OrNull writes null for an absent value (what the writer does by default); Optional... leaves the property out
    // (what the store's options do).

    public static void Property(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, string plain)
    {
        Raw(output, name);
        String(output, plain);
    }

    public static void Property(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, long value)
    {
        Raw(output, name);
        Number(output, value);
    }

    public static void PropertyOrNull(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, string? plain)
    {
        Raw(output, name);
        if (plain is null)
        {
            Raw(output, "null"u8);
        }
        else
        {
            String(output, plain);
        }
    }

    public static void PropertyOrNull(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, IReadOnlyList<string>? plain)
    {
        Raw(output, name);
        Strings(output, plain);
    }

    public static void PropertyOrNull(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, long? value)
    {
        Raw(output, name);
        if (value is { } number)
        {
            Number(output, number);
        }
        else
        {
            Raw(output, "null"u8);
        }
    }

    public static void PropertyOrNull(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, bool? value)
    {
        Raw(output, name);
        Raw(output, value switch { true => "true"u8, false => "false"u8, null => "null"u8 });
    }

    public static void OptionalProperty(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, string? plain)
    {
        if (plain is not null)
        {
            Property(output, name, plain);
        }
    }

    public static void OptionalProperty(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, IReadOnlyList<string>? plain)
    {
        if (plain is not null)
        {
            PropertyOrNull(output, name, plain);
        }
    }

    public static void OptionalProperty(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, long? value)
    {
        if (value is not null)
        {
            PropertyOrNull(output, name, value);
        }
    }

    public static void OptionalProperty(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, bool? value)
    {
        if (value is not null)
        {
            PropertyOrNull(output, name, value);
        }
    }

    public static void OptionalProperty(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> name, IReadOnlyDictionary<string, string>? plain)
    {
        if (plain is null)
        {
            return;
        }

        Raw(output, name);
        if (plain is Dictionary<string, string> dictionary)
        {
            Object(output, dictionary.GetEnumerator());
        }
        else
        {
            Object(output, plain.GetEnumerator());
        }
    }

    /// <summary>A plain string (<see cref="IsPlain(string?)"/>), quoted.</summary>
    private static void String(ArrayBufferWriter<byte> output, string plain)
    {
        var span = output.GetSpan(plain.Length + 2);
        span[0] = (byte)'"';
        Ascii.FromUtf16(plain, span[1..], out _);
        span[plain.Length + 1] = (byte)'"';
        output.Advance(plain.Length + 2);
    }

    /// <summary>Plain strings as an array, or <c>null</c>.</summary>
    private static void Strings(ArrayBufferWriter<byte> output, IReadOnlyList<string>? plain)
    {
        if (plain is null)
        {
            Raw(output, "null"u8);
            return;
        }

        Raw(output, "["u8);
        for (var i = 0; i < plain.Count; i++)
        {
            if (i > 0)
            {
                Raw(output, ","u8);
            }

            String(output, plain[i]);
        }

        Raw(output, "]"u8);
    }

    /// <summary>Plain names and strings as an object, in the enumerator's order.</summary>
    private static void Object<TEnumerator>(ArrayBufferWriter<byte> output, TEnumerator pairs)
        where TEnumerator : IEnumerator<KeyValuePair<string, string>>
    {
        using (pairs)
        {
            Raw(output, "{"u8);
            for (var first = true; pairs.MoveNext(); first = false)
            {
                Property(output, first ? ""u8 : ","u8, pairs.Current.Key);
                Property(output, ":"u8, pairs.Current.Value);
            }

            Raw(output, "}"u8);
        }
    }

    private static void Number(ArrayBufferWriter<byte> output, long value)
    {
        var span = output.GetSpan(20);
        value.TryFormat(span, out var written, provider: CultureInfo.InvariantCulture);
        output.Advance(written);
    }
}

using System.Text.Json;

namespace QwenBatch.Manifests;

/// <summary>
/// A <see cref="Utf8JsonReader"/> over a file, fed from a buffer that is refilled as the reader moves on: only the value
/// being read (one job object) has to fit, and the buffer grows up to a cap for it. Lines are counted from the bytes, so
/// every token knows the 1-based line it starts on. The first syntax error is reported to the diagnostics with its line;
/// after it the stream reads nothing more.
/// </summary>
internal sealed class JsonTokenStream : IDisposable
{
    public const int DefaultBufferSize = 64 * 1024;

    private readonly FileStream _file;
    private readonly int _maxValueBytes;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _final;
    private JsonReaderState _state = new(JsonRowMapper.ReaderOptions);
    private long _base;
    private long _counted;
    private int _line = 1;
    private bool _broken;

    public JsonTokenStream(string path, int bufferSize, int maxValueBytes)
    {
        _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        _buffer = new byte[Math.Max(16, bufferSize)];
        _maxValueBytes = Math.Max(_buffer.Length, maxValueBytes);
        Fill();
        while (!_final && _end < 3)
        {
            Fill();
        }

        if (_buffer.AsSpan(0, _end).StartsWith("\uFEFF"u8))
        {
            _start = 3;
            _counted = 3;
        }
    }

    /// <summary>One token; a start token's children are left for the next calls.</summary>
    public readonly record struct Token(JsonTokenType Type, int Line, string? Text);

    /// <summary>A whole value, parsed on its own, and the line it starts on.</summary>
    public readonly record struct Value(JsonElement Element, int Line);

    /// <summary>The next token, or null at the end of the file or after a syntax error (reported).</summary>
    public Token? Next(ManifestDiagnostics diagnostics)
    {
        while (!_broken)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _final, _state);
            try
            {
                if (reader.Read())
                {
                    var text = reader.TokenType is JsonTokenType.PropertyName or JsonTokenType.String ? reader.GetString() : null;
                    var line = LineAt(_base + _start + reader.TokenStartIndex);
                    var type = reader.TokenType;
                    Commit(ref reader);
                    return new Token(type, line, text);
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                Fail(diagnostics, ex);
                return null;
            }

            if (!More(diagnostics))
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>The type of the next token, without moving past it; null at the end or after a syntax error.</summary>
    public JsonTokenType? Peek(ManifestDiagnostics diagnostics)
    {
        while (!_broken)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _final, _state);
            try
            {
                if (reader.Read())
                {
                    return reader.TokenType;
                }
            }
            catch (JsonException ex)
            {
                Fail(diagnostics, ex);
                return null;
            }

            if (!More(diagnostics))
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>The next element of the array being read, whole; null at the array's end or after a syntax error.</summary>
    public Value? NextElement(ManifestDiagnostics diagnostics) => ReadValue(diagnostics, parse: true, out var value) ? value : null;

    /// <summary>Moves past the next element of the array being read; false at the array's end or after a syntax error.</summary>
    public bool SkipElement(ManifestDiagnostics diagnostics) => ReadValue(diagnostics, parse: false, out _);

    /// <summary>Moves past the value of the property just read.</summary>
    public void SkipValue(ManifestDiagnostics diagnostics) => ReadValue(diagnostics, parse: false, out _);

    /// <summary>Reports anything after the manifest's one top-level value.</summary>
    public void ExpectEnd(ManifestDiagnostics diagnostics)
    {
        if (Next(diagnostics) is { } extra)
        {
            diagnostics.Error(extra.Line, null, "the file is not valid JSON here: there is more after the manifest's closing bracket");
            _broken = true;
        }
    }

    public void Dispose() => _file.Dispose();

    private bool ReadValue(ManifestDiagnostics diagnostics, bool parse, out Value value)
    {
        value = default;
        while (!_broken)
        {
            var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _final, _state);
            try
            {
                if (reader.Read())
                {
                    if (reader.TokenType is JsonTokenType.EndArray or JsonTokenType.EndObject)
                    {
                        Commit(ref reader);
                        return false;
                    }

                    var tokenStart = (int)reader.TokenStartIndex;

                    // The whole value must be in the buffer; if it is not yet, read more and start this value again.
                    if (reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray) || reader.TrySkip())
                    {
                        var line = LineAt(_base + _start + tokenStart);
                        if (parse)
                        {
                            var whole = new Utf8JsonReader(_buffer.AsSpan(_start + tokenStart, (int)reader.BytesConsumed - tokenStart), JsonRowMapper.ReaderOptions);
                            value = new Value(JsonElement.ParseValue(ref whole), line);
                        }

                        Commit(ref reader);
                        return true;
                    }
                }
            }
            catch (JsonException ex)
            {
                Fail(diagnostics, ex);
                return false;
            }

            if (!More(diagnostics))
            {
                return false;
            }
        }

        return false;
    }

    private void Commit(ref Utf8JsonReader reader)
    {
        _state = reader.CurrentState;
        _start += (int)reader.BytesConsumed;
    }

    /// <summary>Makes room and reads more of the file; false when there is no more to read or the value is too large.</summary>
    private bool More(ManifestDiagnostics diagnostics)
    {
        if (_final)
        {
            return false;
        }

        if (_start > 0)
        {
            LineAt(_base + _start);
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _base += _start;
            _end -= _start;
            _start = 0;
        }
        else if (_end == _buffer.Length)
        {
            if (_buffer.Length >= _maxValueBytes)
            {
                diagnostics.Error(LineAt(_base), null, $"a JSON value here is larger than {_maxValueBytes / 1024 / 1024} MB; expected job objects of a few kilobytes");
                _broken = true;
                return false;
            }

            Array.Resize(ref _buffer, (int)Math.Min(_buffer.Length * 2L, _maxValueBytes));
        }

        Fill();
        return true;
    }

    private void Fill()
    {
        var read = _file.Read(_buffer, _end, _buffer.Length - _end);
        if (read == 0)
        {
            _final = true;
        }

        _end += read;
    }

    /// <summary>The line of an absolute offset; offsets are asked for in increasing order, so each byte is counted once.</summary>
    private int LineAt(long offset)
    {
        if (offset > _counted)
        {
            _line += _buffer.AsSpan((int)(_counted - _base), (int)(offset - _counted)).Count((byte)'\n');
            _counted = offset;
        }

        return _line;
    }

    private void Fail(ManifestDiagnostics diagnostics, Exception ex)
    {
        var line = ex is JsonException { LineNumber: { } n } ? (int)n + 1 : LineAt(_base + _start);
        var why = ex is JsonException json ? JsonRowMapper.Describe(json) : ex.Message;
        diagnostics.Error(line, null, $"the file is not valid JSON here: {why}");
        _broken = true;
    }
}

/// <summary>Finds the first bytes of a file that are not UTF-8, streamed; System.Text.Json would stop on them later, less clearly.</summary>
internal static class Utf8Check
{
    /// <summary>The 1-based line of the first byte that is not UTF-8, or null when the whole file is UTF-8.</summary>
    public static int? FirstInvalidLine(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        var buffer = new byte[64 * 1024];
        var chars = new char[buffer.Length];
        var carried = 0;
        var line = 1;
        while (true)
        {
            var read = file.Read(buffer, carried, buffer.Length - carried);
            var length = carried + read;
            var final = read == 0;
            var status = System.Text.Unicode.Utf8.ToUtf16(buffer.AsSpan(0, length), chars, out var used, out _, replaceInvalidSequences: false, isFinalBlock: final);
            line += buffer.AsSpan(0, used).Count((byte)'\n');
            if (status == System.Buffers.OperationStatus.InvalidData)
            {
                return line;
            }

            if (final)
            {
                return null;
            }

            carried = length - used;
            Buffer.BlockCopy(buffer, used, buffer, 0, carried);
        }
    }
}

using QwenBatch.Secrets;
using Serilog.Core;
using Serilog.Events;
using Serilog.Parsing;

namespace QwenBatch.Cli.Logging;

/// <summary>
/// Sits in front of every configured sink and rewrites an event that carries a secret: its template text, its property
/// values (nested ones too) and its exception's message and stack text. Events without one pass through untouched.
/// </summary>
internal sealed class RedactingSink(SecretRedactor redactor, ILogEventSink inner) : ILogEventSink
{
    private static readonly MessageTemplateParser Parser = new();

    public void Emit(LogEvent logEvent)
    {
        var template = logEvent.MessageTemplate;
        if (redactor.Contains(template.Text))
        {
            template = Parser.Parse(redactor.Redact(template.Text));
        }

        var exception = logEvent.Exception is { } ex && redactor.Contains(ex.ToString()) ? new RedactedException(ex, redactor) : logEvent.Exception;
        var properties = logEvent.Properties.Select(p => new LogEventProperty(p.Key, Redact(p.Value))).ToList();
        inner.Emit(new LogEvent(logEvent.Timestamp, logEvent.Level, exception, template, properties));
    }

    private LogEventPropertyValue Redact(LogEventPropertyValue value) => value switch
    {
        ScalarValue { Value: string s } when redactor.Contains(s) => new ScalarValue(redactor.Redact(s)),
        ScalarValue { Value: Uri u } when redactor.Contains(u.ToString()) => new ScalarValue(redactor.Redact(u.ToString())),
        ScalarValue { Value: { } other } when other is not (string or Uri or ValueType) && redactor.Contains(other.ToString() ?? "")
            => new ScalarValue(redactor.Redact(other.ToString() ?? "")),
        SequenceValue seq => new SequenceValue(seq.Elements.Select(Redact)),
        StructureValue st => new StructureValue(st.Properties.Select(p => new LogEventProperty(p.Name, Redact(p.Value))), st.TypeTag),
        DictionaryValue dict => new DictionaryValue(dict.Elements.Select(e => new KeyValuePair<ScalarValue, LogEventPropertyValue>(e.Key, Redact(e.Value)))),
        _ => value,
    };
}

/// <summary>An exception's text with the secrets masked; sinks print <see cref="ToString"/>, so that is what is replaced.</summary>
internal sealed class RedactedException : Exception
{
    private readonly string _text;

    public RedactedException(Exception original, SecretRedactor redactor)
        : base(redactor.Redact(original.Message))
    {
        _text = redactor.Redact(original.ToString());
        OriginalType = original.GetType().FullName;
    }

    public RedactedException()
    {
        _text = "";
    }

    public RedactedException(string message)
        : base(message)
    {
        _text = message;
    }

    public RedactedException(string message, Exception innerException)
        : base(message, innerException)
    {
        _text = message;
    }

    public string? OriginalType { get; }

    public override string ToString() => _text;
}

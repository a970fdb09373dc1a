using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Json;

namespace QwenBatch.Cli.Logging;

/// <summary>
/// One JSON object per line, with the rendered message beside the template and every property (BatchId, JobId, …), for
/// the rolling file under logs/. Named in appsettings.json; Serilog.Formatting.Compact is not served by our registry.
/// </summary>
public sealed class JsonLinesFormatter : ITextFormatter
{
    private readonly JsonFormatter _json = new(closingDelimiter: Environment.NewLine, renderMessage: true);

    public void Format(LogEvent logEvent, TextWriter output) => _json.Format(logEvent, output);
}

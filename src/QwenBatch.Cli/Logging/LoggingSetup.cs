using Microsoft.Extensions.Configuration;
using QwenBatch.Secrets;
using Serilog;
using Serilog.Events;

namespace QwenBatch.Cli.Logging;

/// <summary>
/// Serilog from the <c>Serilog</c> section of the configuration (sinks, levels, enrichers), behind one
/// <see cref="RedactingSink"/>. Levels and overrides are applied in front of the redaction so a filtered event costs
/// nothing; the configured sinks then see only redacted events.
/// </summary>
internal static class LoggingSetup
{
    public static ILogger Create(IConfiguration configuration, SecretRedactor redactor)
    {
        // Everything that reaches the inner logger already passed the configured levels and overrides, so it lets all through.
        var sinks = new LoggerConfiguration().ReadFrom.Configuration(configuration).MinimumLevel.Verbose().CreateLogger();
        var levels = new ConfigurationBuilder().AddInMemoryCollection(configuration.GetSection("Serilog:MinimumLevel").AsEnumerable()).Build();
        return new LoggerConfiguration()
            .ReadFrom.Configuration(levels)
            .Enrich.FromLogContext()
            .WriteTo.Sink(new RedactingSink(redactor, new DisposingSink(sinks)))
            .CreateLogger();
    }

    /// <summary>Passes events on and flushes the inner logger (its file sink) when the outer one is closed.</summary>
    private sealed class DisposingSink(Serilog.Core.Logger inner) : Serilog.Core.ILogEventSink, IDisposable
    {
        public void Emit(LogEvent logEvent) => ((Serilog.Core.ILogEventSink)inner).Emit(logEvent);

        public void Dispose() => inner.Dispose();
    }
}

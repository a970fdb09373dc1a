using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Logging;
using QwenBatch.Secrets;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace QwenBatch.Cli.Tests.Logging;

public sealed class RedactingSinkTests
{
    private const string Key = "wsk-live-4e8a1c0b9d";

    [Fact]
    public void Emit_KeyInTemplatePropertiesExceptionAndUrl_NoSinkSeesIt()
    {
        var captured = new Capture();
        using var logger = new LoggerConfiguration().MinimumLevel.Verbose()
            .WriteTo.Sink(new RedactingSink(new SecretRedactor([Key]), captured)).CreateLogger();
        var error = new HttpRequestException($"401 for https://api.example/v1?key={Key}", new InvalidOperationException($"Bearer {Key}"));

        logger.Error(error, "Calling {Url} with {@Request} failed " + Key, new Uri($"https://user:{Key}@api.example/x"), new { Header = $"Bearer {Key}", Tags = new[] { Key } });

        var e = captured.Events.ShouldHaveSingleItem();
        using var text = new StringWriter();
        new Serilog.Formatting.Compact.RenderedCompactJsonFormatter().Format(e, text);
        text.ToString().ShouldNotContain(Key);
        text.ToString().ShouldContain(SecretRedactor.Mask);
        e.RenderMessage(System.Globalization.CultureInfo.InvariantCulture).ShouldNotContain(Key);
        e.Exception!.ToString().ShouldNotContain(Key);
        e.Exception.ToString().ShouldContain("InvalidOperationException");
    }

    [Fact]
    public void Redact_UrlWithUserInfoPassword_MasksOnlyThePassword()
    {
        SecretRedactor.None.Redact("postgres://qb:hunter22@db:5432/qwenbatch").ShouldBe("postgres://qb:***@db:5432/qwenbatch");
    }

    [Fact]
    public void From_ConfiguredKeysAndConnectionPassword_AreAllSecrets()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Providers:WaveSpeed:ApiKey"] = "configured-wavespeed-key",
            ["ConnectionStrings:Postgres"] = "Host=db;Username=qb;Password=pg-secret-99",
            ["Simulator:WebhookSecret"] = "whsec_simulator-secret-7",
        }).Build();

        var redactor = ConfiguredSecrets.From(configuration);

        redactor.Redact("k=configured-wavespeed-key p=pg-secret-99 s=whsec_simulator-secret-7").ShouldBe("k=*** p=*** s=***");
    }

    private sealed class Capture : ILogEventSink
    {
        public List<LogEvent> Events { get; } = [];

        public void Emit(LogEvent logEvent) => Events.Add(logEvent);
    }
}

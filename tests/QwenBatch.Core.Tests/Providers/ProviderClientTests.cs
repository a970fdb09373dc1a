using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Providers;
using QwenBatch.Providers.Odirouter;
using QwenBatch.Providers.Resilience;
using QwenBatch.Providers.WaveSpeed;
using QwenBatch.Simulator;

namespace QwenBatch.Core.Tests.Providers;

/// <summary>Both clients over real loopback HTTP against the simulator, through the same pipeline the CLI composes.</summary>
public sealed class ProviderClientTests
{
    private const string SecretKey = "sk-live-7d1f0c93be4a2e55";
    private static readonly EditRequest Edit = new("white studio background", ["https://example.com/mug.png"], null, "512*384", 1, null, OutputFormat: "png");

    [Fact]
    public async Task WaveSpeed_SubmitAndPoll_CompletesWithOutputNsfwFlagAndInference()
    {
        await using var sim = await StartAsync(new SimulatorOptions { LatencyMin = TimeSpan.FromMilliseconds(50), LatencyMax = TimeSpan.FromMilliseconds(50) });
        var client = WaveSpeed(sim.BaseUrl, new LogSink());

        var accepted = await client.SubmitAsync(Edit, CancellationToken.None);
        var result = await PollUntilDoneAsync(client, accepted.RequestId);

        result.Status.ShouldBe(PollStatus.Completed);
        result.Outputs!.Count.ShouldBe(1);
        result.Outputs[0].Url!.ShouldEndWith("/0.png");
        result.Outputs[0].HasNsfw.ShouldBe(false);
        result.Inference.ShouldBe(TimeSpan.FromMilliseconds(50));
        (await client.CancelAsync(accepted.RequestId, CancellationToken.None)).ShouldBe(CancelOutcome.Unsupported);
    }

    [Fact]
    public async Task WaveSpeed_Base64Output_ReturnsInlineData()
    {
        await using var sim = await StartAsync(new SimulatorOptions { LatencyMin = TimeSpan.Zero, LatencyMax = TimeSpan.Zero });
        var client = WaveSpeed(sim.BaseUrl, new LogSink(), base64: true);

        var accepted = await client.SubmitAsync(Edit with { OutputFormat = "jpeg" }, CancellationToken.None);
        var result = await PollUntilDoneAsync(client, accepted.RequestId);

        result.Outputs![0].Base64!.ShouldStartWith("data:image/jpeg;base64,");
    }

    [Fact]
    public async Task WaveSpeed_TaskFailsAtProvider_PollReportsFailedWithTheProviderError()
    {
        await using var sim = await StartAsync(new SimulatorOptions { FailRate = 1, LatencyMin = TimeSpan.Zero, LatencyMax = TimeSpan.Zero });
        var client = WaveSpeed(sim.BaseUrl, new LogSink());

        var result = await PollUntilDoneAsync(client, (await client.SubmitAsync(Edit, CancellationToken.None)).RequestId);

        result.Status.ShouldBe(PollStatus.Failed);
        result.Error.ShouldBe("Simulated inference failure");
    }

    [Theory]
    [InlineData(ProviderNames.WaveSpeed)]
    [InlineData(ProviderNames.Odirouter)]
    public async Task Submit_ProviderAnswers400_RejectedWithTheProviderMessage(string provider)
    {
        await using var sim = await StartAsync(new SimulatorOptions());
        IImageEditProvider client = provider == ProviderNames.WaveSpeed ? WaveSpeed(sim.BaseUrl, new LogSink()) : Odirouter(sim.BaseUrl, new LogSink());

        // Valid for both clients' own checks, invalid on the wire: a data URI with nothing after the comma.
        var error = await Should.ThrowAsync<ProviderException>(client.SubmitAsync(Edit with { Images = ["data:image/png;base64,"], OutputFormat = null }, CancellationToken.None));

        error.Kind.ShouldBe(ProviderErrorKind.Rejected);
        error.StatusCode.ShouldBe(400);
        error.Message.ShouldContain("images[0]: a non-empty http(s) URL, data URI or base64 string was expected");
    }

    [Fact]
    public async Task WaveSpeed_RequestOutsideItsLimits_RejectedBeforeSending()
    {
        await using var sim = await StartAsync(new SimulatorOptions());
        var client = WaveSpeed(sim.BaseUrl, new LogSink());

        var error = await Should.ThrowAsync<ProviderException>(client.SubmitAsync(Edit with { Size = "2048*2048", NegativePrompt = "blur" }, CancellationToken.None));

        error.Kind.ShouldBe(ProviderErrorKind.Rejected);
        error.Message.ShouldContain("size: '2048*2048' is not allowed by wavespeed");
        error.Message.ShouldContain("negative_prompt: wavespeed does not take a negative prompt");
        sim.GetStats().Submits.ShouldBe(0);
    }

    [Theory]
    [InlineData(ProviderNames.WaveSpeed)]
    [InlineData(ProviderNames.Odirouter)]
    public async Task Calls_ThroughFaultsAndOutage_KeyInNoExceptionMessageOrLogLine(string provider)
    {
        var sink = new LogSink();
        await using (var sim = await StartAsync(new SimulatorOptions { ErrorRate = 0.5, DropRate = 0.2, MalformedRate = 0.2, RandomSeed = 7 }))
        {
            IImageEditProvider client = provider == ProviderNames.WaveSpeed ? WaveSpeed(sim.BaseUrl, sink) : Odirouter(sim.BaseUrl, sink);
            var errors = new List<Exception>();
            for (var i = 0; i < 30; i++)
            {
                try
                {
                    var accepted = await client.SubmitAsync(Edit with { OutputFormat = provider == ProviderNames.WaveSpeed ? "png" : null }, CancellationToken.None);
                    await client.PollAsync(accepted.RequestId, CancellationToken.None);
                }
                catch (ProviderException ex)
                {
                    errors.Add(ex);
                }
            }

            await ShouldNotLeakAsync(errors, sink);
            errors.ShouldNotBeEmpty();
        }

        // Nothing listens any more: connection refused, then the circuit opens.
        IImageEditProvider dead = provider == ProviderNames.WaveSpeed ? WaveSpeed(new Uri("http://127.0.0.1:9/"), sink) : Odirouter(new Uri("http://127.0.0.1:9/"), sink);
        var refused = new List<Exception>();
        for (var i = 0; i < 25; i++)
        {
            refused.Add(await Should.ThrowAsync<ProviderException>(dead.PollAsync("sim_x", CancellationToken.None)));
        }

        refused.OfType<ProviderException>().ShouldContain(e => e.Kind == ProviderErrorKind.Unavailable);
        await ShouldNotLeakAsync(refused, sink);
    }

    [Fact]
    public async Task Odirouter_SubmitAndResponse_MatchTheApiPageFieldByField()
    {
        var transport = new RecordingTransport("""
            {"request_id":"mmsu_01hxyz","response_url":"https://odirouter.ai/model/v1/queue/qwen_image_edit_plus/requests/mmsu_01hxyz/response",
             "status_url":"https://odirouter.ai/model/v1/queue/qwen_image_edit_plus/requests/mmsu_01hxyz/status",
             "cancel_url":"https://odirouter.ai/model/v1/queue/qwen_image_edit_plus/requests/mmsu_01hxyz/cancel","queue_position":0}
            """);
        var options = new ProviderOptions { BaseUrl = new Uri("https://odirouter.ai/model"), ApiKey = "YOUR_API_KEY" };
        var client = new OdirouterClient(new HttpClient(transport), options, NullLogger<OdirouterClient>.Instance);

        var accepted = await client.SubmitAsync(new EditRequest(
            "A red apple on a white table, clean studio lighting, simple background.", ["https://example.com/reference-image.webp"],
            "blurry", "1024*1536", 2, 42, PromptExtend: false, Watermark: true), CancellationToken.None);

        accepted.ShouldBe(new SubmitAccepted("mmsu_01hxyz", 0));
        transport.Method.ShouldBe(HttpMethod.Post);
        transport.Uri.ShouldBe(new Uri("https://odirouter.ai/model/v1/queue/qwen_image_edit_plus"));
        transport.Authorization.ShouldBe("Bearer YOUR_API_KEY");
        transport.ContentType.ShouldBe("application/json");
        var body = JsonDocument.Parse(transport.Body!).RootElement;
        body.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)
            .ShouldBe(["images", "n", "negative_prompt", "prompt", "prompt_extend", "seed", "size", "watermark"]);
        body.GetProperty("prompt").GetString().ShouldBe("A red apple on a white table, clean studio lighting, simple background.");
        body.GetProperty("images").EnumerateArray().Select(i => i.GetString()).ShouldBe(["https://example.com/reference-image.webp"]);
        body.GetProperty("negative_prompt").GetString().ShouldBe("blurry");
        body.GetProperty("size").GetString().ShouldBe("1024*1536");
        body.GetProperty("n").GetInt32().ShouldBe(2);
        body.GetProperty("seed").GetInt64().ShouldBe(42);
        body.GetProperty("prompt_extend").GetBoolean().ShouldBeFalse();
        body.GetProperty("watermark").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task Odirouter_MinimalSubmit_SendsOnlyTheRequiredFieldsOfTheCurlExample()
    {
        var transport = new RecordingTransport("""{"request_id":"mmsu_01hxyz","queue_position":3}""");
        var client = new OdirouterClient(new HttpClient(transport), new ProviderOptions { BaseUrl = new Uri("https://odirouter.ai/model"), ApiKey = "k" }, NullLogger<OdirouterClient>.Instance);

        var accepted = await client.SubmitAsync(new EditRequest("A red apple", ["https://example.com/reference-image.webp"], null, null, 1, null), CancellationToken.None);

        accepted.QueuePosition.ShouldBe(3);
        JsonDocument.Parse(transport.Body!).RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ShouldBe(["images", "prompt"]);
    }

    private static async Task ShouldNotLeakAsync(IEnumerable<Exception> errors, LogSink sink)
    {
        await Task.Yield();
        foreach (var error in errors)
        {
            for (Exception? e = error; e is not null; e = e.InnerException)
            {
                e.Message.ShouldNotContain(SecretKey);
                e.ToString().ShouldNotContain(SecretKey);
            }
        }

        sink.Lines.ShouldNotBeEmpty();
        sink.Lines.ShouldAllBe(line => !line.Contains(SecretKey, StringComparison.Ordinal));
    }

    private static async Task<PollResult> PollUntilDoneAsync(WaveSpeedClient client, string requestId)
    {
        var started = TimeProvider.System.GetTimestamp();
        while (true)
        {
            var result = await client.PollAsync(requestId, CancellationToken.None);
            if (result.Status is PollStatus.Completed or PollStatus.Failed)
                return result;
            TimeProvider.System.GetElapsedTime(started).ShouldBeLessThan(TimeSpan.FromSeconds(20));
            await Task.Delay(20);
        }
    }

    private static Task<SimulatorHost> StartAsync(SimulatorOptions options) =>
        SimulatorHost.StartAsync(options, 0, TimeProvider.System, NullLoggerFactory.Instance, CancellationToken.None);

    private static WaveSpeedClient WaveSpeed(Uri baseUrl, LogSink sink, bool base64 = false)
    {
        var options = new ProviderOptions { BaseUrl = baseUrl, ApiKey = SecretKey, Base64Output = base64, RequestTimeout = TimeSpan.FromSeconds(5) };
        return new WaveSpeedClient(Http(options, sink), options, sink.Factory.CreateLogger<WaveSpeedClient>());
    }

    private static OdirouterClient Odirouter(Uri baseUrl, LogSink sink)
    {
        var options = new ProviderOptions { BaseUrl = baseUrl, ApiKey = SecretKey, RequestTimeout = TimeSpan.FromSeconds(5) };
        return new OdirouterClient(Http(options, sink), options, sink.Factory.CreateLogger<OdirouterClient>());
    }

    /// <summary>The composition the CLI uses: pipeline handler over a real socket handler, debug logging on.</summary>
    private static HttpClient Http(ProviderOptions options, LogSink sink)
    {
        var resilience = new ResilienceOptions { RetryBaseDelay = TimeSpan.FromMilliseconds(5), RetryMaxDelay = TimeSpan.FromMilliseconds(20), BreakerMinimumThroughput = 10, BreakDuration = TimeSpan.FromSeconds(30) };
        var pipeline = ProviderResilience.Build("test", resilience, options.RequestTimeout, TimeProvider.System, sink.Factory.CreateLogger("resilience"));
        return new HttpClient(new ResilienceHandler(pipeline) { InnerHandler = new SocketsHttpHandler() }) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Captures every formatted log line (with exception text) at every level.</summary>
    private sealed class LogSink : ILoggerProvider
    {
        public LogSink() => Factory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(this));

        public ILoggerFactory Factory { get; }

        public ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Sink(this);

        public void Dispose()
        {
        }

        private sealed class Sink(LogSink owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Lines.Enqueue($"{logLevel} {formatter(state, exception)} {exception}");
        }
    }

    /// <summary>Records the one request it gets and answers 200 with the given JSON.</summary>
    private sealed class RecordingTransport(string answer) : HttpMessageHandler
    {
        public HttpMethod? Method { get; private set; }

        public Uri? Uri { get; private set; }

        public string? Authorization { get; private set; }

        public string? ContentType { get; private set; }

        public string? Body { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Method = request.Method;
            Uri = request.RequestUri;
            Authorization = request.Headers.Authorization?.ToString();
            ContentType = request.Content?.Headers.ContentType?.MediaType;
            Body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(answer, System.Text.Encoding.UTF8, "application/json") };
        }
    }
}

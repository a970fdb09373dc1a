using Microsoft.Extensions.Time.Testing;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Providers;
using QwenBatch.Providers.Resilience;
using QwenBatch.Testing.Time;

namespace QwenBatch.Core.Tests.Providers;

/// <summary>The provider pipeline under an HttpClient, on a fake clock, with a scripted transport underneath.</summary>
public sealed class ResilienceHandlerTests
{
    private static readonly Uri Status = new("http://provider.test/v1/queue/qwen_image_edit_plus/requests/r1/status");
    private static readonly Uri Queue = new("http://provider.test/v1/queue/qwen_image_edit_plus");
    private readonly FakeTimeProvider _time = TestClock.Create();

    [Fact]
    public async Task Get_TwoServiceUnavailable_RetriesWithBackoffAndReturnsTheSuccess()
    {
        var transport = new ScriptedTransport(Answer(503), Answer(502), Answer(200));
        using var http = Client(transport);

        var response = await RunClockAsync(http.GetAsync(Status));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        transport.Calls.ShouldBe(3);
    }

    [Fact]
    public async Task Get_RetryAfterTwoSeconds_WaitsAtLeastThatLong()
    {
        var limited = Answer(429);
        limited.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(2));
        var transport = new ScriptedTransport(limited, Answer(200));
        using var http = Client(transport);

        var call = http.GetAsync(Status);
        for (var i = 0; i < 19; i++)
        {
            await Task.Delay(5);
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }

        transport.Calls.ShouldBe(1, "1.9 s into a 2 s Retry-After");
        (await RunClockAsync(call)).StatusCode.ShouldBe(HttpStatusCode.OK);
        transport.Calls.ShouldBe(2);
    }

    [Fact]
    public async Task Post_ServerError_IsNotRetriedAndSurfacesAsUncertain()
    {
        var transport = new ScriptedTransport(Answer(500), Answer(200));
        using var http = Client(transport);
        using var request = new HttpRequestMessage(HttpMethod.Post, Queue) { Content = new StringContent("{}") };

        var (status, body, retryAfter) = await RunClockAsync(ProviderHttp.SendAsync(http, request, idempotent: false, CancellationToken.None));

        transport.Calls.ShouldBe(1);
        ProviderHttp.Failure(request, status, body, retryAfter, idempotent: false).Kind.ShouldBe(ProviderErrorKind.Uncertain);
    }

    [Fact]
    public async Task Post_ServiceUnavailableThenConnectionRefused_RetriedBecauseCertainlyNotAccepted()
    {
        var transport = new ScriptedTransport(Answer(503), new HttpRequestException("refused", new SocketException((int)SocketError.ConnectionRefused)), Answer(200));
        using var http = Client(transport);

        var response = await RunClockAsync(http.PostAsync(Queue, new StringContent("{}")));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        transport.Calls.ShouldBe(3);
        transport.Bodies.ShouldAllBe(b => b == "{}");
    }

    [Fact]
    public async Task Post_ConnectionReset_IsNotRetried()
    {
        var transport = new ScriptedTransport(new HttpRequestException("reset", new SocketException((int)SocketError.ConnectionReset)), Answer(200));
        using var http = Client(transport);
        using var request = new HttpRequestMessage(HttpMethod.Post, Queue) { Content = new StringContent("{}") };

        var error = await Should.ThrowAsync<ProviderException>(RunClockAsync(ProviderHttp.SendAsync(http, request, idempotent: false, CancellationToken.None)));

        error.Kind.ShouldBe(ProviderErrorKind.Uncertain);
        transport.Calls.ShouldBe(1);
    }

    [Fact]
    public async Task Get_ProviderDown_OpensTheCircuitAndSurfacesUnavailableWithTheBreak()
    {
        var transport = new ScriptedTransport(Enumerable.Range(0, 100).Select(_ => (object)Answer(500)).ToArray());
        var options = new ResilienceOptions { MaxRetries = 0, BreakerMinimumThroughput = 4, BreakDuration = TimeSpan.FromSeconds(30) };
        using var http = Client(transport, options);
        for (var i = 0; i < 4; i++)
        {
            (await RunClockAsync(http.GetAsync(Status))).StatusCode.ShouldBe(HttpStatusCode.InternalServerError);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, Status);
        var error = await Should.ThrowAsync<ProviderException>(ProviderHttp.SendAsync(http, request, idempotent: true, CancellationToken.None));

        error.Kind.ShouldBe(ProviderErrorKind.Unavailable);
        error.RetryAfter.ShouldNotBeNull().ShouldBeLessThanOrEqualTo(TimeSpan.FromSeconds(30));
        transport.Calls.ShouldBe(4, "an open circuit sends nothing");
    }

    [Fact]
    public async Task Get_AttemptHangs_TimesOutOnTheFakeClockAndRetries()
    {
        var transport = new ScriptedTransport(ScriptedTransport.Hang, Answer(200));
        using var http = Client(transport);

        var response = await RunClockAsync(http.GetAsync(Status));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        transport.Calls.ShouldBe(2);
    }

    private HttpClient Client(ScriptedTransport transport, ResilienceOptions? options = null)
    {
        var pipeline = ProviderResilience.Build("test", options ?? new ResilienceOptions(), TimeSpan.FromSeconds(10), _time, NullLogger.Instance, () => 0.5);
        return new HttpClient(new ResilienceHandler(pipeline) { InnerHandler = transport }) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Moves the fake clock until the call completes (retry delays and timeouts run on it).</summary>
    private async Task<T> RunClockAsync<T>(Task<T> call)
    {
        for (var i = 0; i < 2000 && !call.IsCompleted; i++)
        {
            await Task.Delay(2);
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }

        return await call;
    }

    private static HttpResponseMessage Answer(int status) => new((HttpStatusCode)status) { Content = new StringContent("{}") };

    /// <summary>Answers each call with the next scripted response or exception; <see cref="Hang"/> waits until cancelled.</summary>
    private sealed class ScriptedTransport(params object[] script) : HttpMessageHandler
    {
        public static readonly object Hang = new();
        private int _calls;

        public int Calls => _calls;

        public List<string> Bodies { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var step = script[Interlocked.Increment(ref _calls) - 1];
            if (request.Content is not null)
                Bodies.Add(await request.Content.ReadAsStringAsync(cancellationToken));
            if (step == Hang)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return step is Exception error ? throw error : (HttpResponseMessage)step;
        }
    }
}

using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Core.Tests.Support;
using QwenBatch.Providers;
using QwenBatch.Providers.Resilience;
using QwenBatch.Simulator;
using QwenBatch.Storage;
using QwenBatch.Uploads;

namespace QwenBatch.Core.Tests.Uploads;

/// <summary>
/// The WaveSpeed and odirouter clients composed as the CLI composes them (resilience pipeline and the fleet's shared
/// request allowance, on a SQLite store with a manual clock) against a simulator over loopback HTTP, plus the uploads.
/// </summary>
internal sealed class UploadRig : IAsyncDisposable
{
    public const string Key = "sk-live-5e2b7c9d0a1f3e68";

    private readonly ServiceProvider _services;
    private readonly string _images = Directory.CreateTempSubdirectory("qwenbatch-uploads-").FullName;

    private UploadRig(SqliteStoreScope scope, SimulatorHost simulator, ServiceProvider services)
    {
        Scope = scope;
        Simulator = simulator;
        _services = services;
        Providers = services.GetRequiredService<ProviderRegistry>();
        Uploads = new InputUploads(scope.Store, scope.Time, NullLogger<InputUploads>.Instance);
        Requests = new EditRequestBuilder(Uploads);
    }

    public SqliteStoreScope Scope { get; }

    public SimulatorHost Simulator { get; }

    public ProviderRegistry Providers { get; }

    public InputUploads Uploads { get; }

    public EditRequestBuilder Requests { get; }

    public ProviderAccount WaveSpeed => Providers.Get(ProviderNames.WaveSpeed);

    public static async Task<UploadRig> StartAsync(SimulatorOptions? simulator = null, string? key = Key, bool uploadInputs = true, int maxRetries = 2)
    {
        var scope = new SqliteStoreScope();
        await scope.Store.MigrateAsync(CancellationToken.None);
        var sim = await SimulatorHost.StartAsync(simulator ?? new SimulatorOptions { LatencyMin = TimeSpan.Zero, LatencyMax = TimeSpan.Zero }, 0, TimeProvider.System,
            NullLoggerFactory.Instance, CancellationToken.None);
        var resilience = new ResilienceOptions { MaxRetries = maxRetries, RetryBaseDelay = TimeSpan.FromMilliseconds(10), RetryMaxDelay = TimeSpan.FromMilliseconds(40) };
        var accounts = new Dictionary<string, ProviderOptions>
        {
            [ProviderNames.WaveSpeed] = new() { BaseUrl = sim.BaseUrl, ApiKey = key, RequestsPerSecond = 1000, Burst = 100, Resilience = resilience, UploadInputs = uploadInputs },
            [ProviderNames.Odirouter] = new() { BaseUrl = sim.BaseUrl, ApiKey = key, Resilience = resilience },
        };
        var services = new ServiceCollection()
            .AddLogging()
            .AddSingleton<IFlowControlStore>(scope.Store)
            .AddProviderAccounts(accounts, scope.Time)
            .BuildServiceProvider();
        return new UploadRig(scope, sim, services);
    }

    /// <summary>A copy of a sample image (or <paramref name="bytes"/>) under <paramref name="name"/> in a folder of the test's own.</summary>
    public string Image(string name, byte[]? bytes = null)
    {
        var path = Path.Combine(_images, name);
        File.WriteAllBytes(path, bytes ?? File.ReadAllBytes(Sample("banner.png")));
        return path;
    }

    /// <summary>Advances the manual clock in small steps until <paramref name="task"/> is done (retry delays wait on it).</summary>
    public async Task<T> PumpAsync<T>(Task<T> task)
    {
        for (var i = 0; i < 2000 && !task.IsCompleted; i++)
        {
            Scope.Time.Advance(TimeSpan.FromMilliseconds(20));
            await Task.Delay(1);
        }

        return task.IsCompleted ? await task : throw new TimeoutException("the task waited on through 40 s of the manual clock");
    }

    public static string Sample(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "samples", "images", name);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new FileNotFoundException($"samples/images/{name} not found above the test folder.");
    }

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await Simulator.DisposeAsync();
        await Scope.DisposeAsync();
        Directory.Delete(_images, recursive: true);
    }
}

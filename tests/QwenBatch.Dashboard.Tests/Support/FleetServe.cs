using Hangfire.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Hosting;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Storage;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Dashboard.Tests.Support;

/// <summary>
/// <c>serve</c> as a fleet member runs it, composed as <c>ServeCommand</c> composes it: the CLI's runtime over a real
/// PostgreSQL database of its own (Hangfire.PostgreSql storage beside QwenBatch's tables), its engine started (a Hangfire
/// server with the feeder and the poller), and the web app on real Kestrel. Disposing stops it as <c>serve</c> stops: the
/// web host, then the engine (whose last logs may go through the host's loggers), then the rest.
/// </summary>
internal sealed class FleetServe : IAsyncDisposable
{
    private readonly string _folder;
    private readonly string _database;
    private readonly Runtime _runtime;
    private readonly IBackgroundProcessingServer _engine;
    private readonly WebApplication _app;

    private FleetServe(string folder, string database, Runtime runtime, IBackgroundProcessingServer engine, WebApplication app) =>
        (_folder, _database, _runtime, _engine, _app) = (folder, database, runtime, engine, app);

    public string BaseUrl => _app.Urls.First().TrimEnd('/');

    /// <summary>Its state folder (the in-process simulator's port is kept there, as <c>run</c> keeps it).</summary>
    public string State => Path.Combine(_folder, "state");

    public IStore Store => _runtime.Store;

    /// <param name="settings">Settings beside the database, folders, input root and a quick Hangfire (2 workers, 1 s polls).</param>
    /// <param name="withSimulator">Whether the runtime starts the in-process simulator (the <c>simulator</c> provider).</param>
    /// <param name="urls">Where Kestrel listens; port 0 picks a free one.</param>
    public static async Task<FleetServe> StartAsync(string databaseName, IReadOnlyDictionary<string, string?> settings, bool withSimulator, string urls = "http://127.0.0.1:0")
    {
        HangfireLogs.Reset();
        var folder = Directory.CreateTempSubdirectory("qwenbatch-serve-").FullName;
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync(databaseName);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = database,
            ["Storage:Root"] = Path.Combine(folder, "output"),
            ["State:Directory"] = Path.Combine(folder, "state"),
            ["Dashboard:InputRoot"] = TestManifests.Samples,
            ["Hangfire:WorkerCount"] = "2",
            ["Hangfire:QueuePollInterval"] = "00:00:01",
            ["Hangfire:SchedulePollingInterval"] = "00:00:01",
        }).AddInMemoryCollection(settings).Build();
        var runtime = await Runtime.StartAsync(configuration, withSimulator, CancellationToken.None);
        var engine = await runtime.StartEngineAsync(EngineScope.Everything, CancellationToken.None);
        var app = await ServeHost.StartAsync(configuration, runtime, urls, CancellationToken.None);
        return new FleetServe(folder, database, runtime, engine, app);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await EditServer.StopAsync(_engine);
        await _app.DisposeAsync();
        await _runtime.DisposeAsync();
        await (await PostgresServer.GetAsync()).DropDatabaseAsync(_database);
        Directory.Delete(_folder, recursive: true);
    }
}

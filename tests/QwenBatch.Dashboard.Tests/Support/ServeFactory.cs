using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using QwenBatch.Cli.Hosting;
using QwenBatch.Storage;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Dashboard.Tests.Support;

/// <summary>
/// <c>serve --no-worker</c> on a test server: the CLI's runtime and web app (<see cref="ServeHost.Build"/>) over a real
/// PostgreSQL database of its own, with Hangfire.PostgreSql storage beside QwenBatch's tables. A test server gives requests
/// no remote address, so a startup filter sets one: loopback, or the address a client was made with. The web app is built
/// at the first <see cref="CreateClientAsync"/>, so a test can change <see cref="Settings"/> (the <c>Dashboard</c> section)
/// before it.
/// </summary>
/// <param name="simulatorConfigured">
/// Whether the fleet has a separately started simulator configured (<c>Providers:Simulator:BaseUrl</c>, never called by a
/// server without workers) and takes it as the default provider of uploads.
/// </param>
internal sealed class ServeFactory(bool simulatorConfigured = true) : IAsyncLifetime
{
    private const string RemoteHeader = "X-Test-Remote-Address";
    private readonly string _folder = Directory.CreateTempSubdirectory("qwenbatch-dashboard-").FullName;
    private string _database = "";
    private Runtime? _runtime;
    private WebApplication? _app;

    public string StorageRoot => Path.Combine(_folder, "output");

    public Dictionary<string, string?> Settings { get; } = new();

    public Runtime Runtime => _runtime ?? throw new InvalidOperationException("Not initialized.");

    public IStore Store => Runtime.Store;

    public async Task InitializeAsync()
    {
        HangfireLogs.Reset();
        _database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("dashboard_tests");
        _runtime = await Runtime.StartAsync(Configuration(), withSimulator: false, CancellationToken.None);
    }

    /// <summary>A client of the app, from loopback or from <paramref name="remote"/>; it keeps cookies (the antiforgery one).</summary>
    public async Task<HttpClient> CreateClientAsync(string? remote = null)
    {
        if (_app is null)
        {
            _app = ServeHost.Build(Configuration(), Runtime, web => web.UseTestServer().ConfigureServices(s => s.AddSingleton<IStartupFilter, RemoteAddressFilter>()));
            await _app.StartAsync();
        }

        var server = _app.GetTestServer();
        var client = new HttpClient(new CookieContainerHandler { InnerHandler = server.CreateHandler() }) { BaseAddress = server.BaseAddress };
        if (remote is not null)
        {
            client.DefaultRequestHeaders.Add(RemoteHeader, remote);
        }

        return client;
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        if (_runtime is not null)
        {
            await _runtime.DisposeAsync();
        }

        await (await PostgresServer.GetAsync()).DropDatabaseAsync(_database);
        Directory.Delete(_folder, recursive: true);
    }

    private IConfiguration Configuration()
    {
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = _database,
            ["Storage:Root"] = StorageRoot,
            ["State:Directory"] = Path.Combine(_folder, "state"),
        };
        if (simulatorConfigured)
        {
            settings["Providers:Simulator:BaseUrl"] = "http://127.0.0.1:9/";
            settings["Dashboard:DefaultProvider"] = "simulator";
        }

        return new ConfigurationBuilder().AddInMemoryCollection(settings).AddInMemoryCollection(Settings).Build();
    }

    private sealed class RemoteAddressFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (HttpContext context, RequestDelegate nextStep) =>
            {
                context.Connection.RemoteIpAddress = context.Request.Headers.TryGetValue(RemoteHeader, out var remote)
                    ? IPAddress.Parse(remote.ToString())
                    : IPAddress.Loopback;
                await nextStep(context);
            });
            next(app);
        };
    }
}

using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Dashboard;
using QwenBatch.Dashboard.Hosting;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Dashboard.Tests.Support;

/// <summary>
/// The dashboard on TestServer over a real PostgreSQL (the CLI assembly is the entry point WebApplicationFactory asks
/// for; the host itself is built here) database of its own (no worker). TestServer gives requests no
/// remote address, so a startup filter sets one: loopback, or the address in the <see cref="RemoteHeader"/> header.
/// </summary>
internal sealed class DashboardFactory : WebApplicationFactory<QwenBatch.Cli.Hosting.Runtime>, IAsyncLifetime
{
    public const string RemoteHeader = "X-Test-Remote-Address";

    private string _connectionString = "";

    public string StorageRoot { get; } = Directory.CreateTempSubdirectory("qwenbatch-dashboard-").FullName;

    public IJobStore Store { get; private set; } = null!;

    public Dictionary<string, string?> Settings { get; } = new();

    public async Task InitializeAsync()
    {
        _connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("dashboard_tests");
        Store = new PostgresJobStore(_connectionString, TimeProvider.System, NullLogger<PostgresJobStore>.Instance);
        await Store.MigrateAsync(CancellationToken.None);
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await Store.DisposeAsync();
        await base.DisposeAsync();
        await (await PostgresServer.GetAsync()).DropDatabaseAsync(_connectionString);
        Directory.Delete(StorageRoot, recursive: true);
    }

    protected override IHostBuilder CreateHostBuilder() =>
        Host.CreateDefaultBuilder().ConfigureWebHostDefaults(web => web
            .UseContentRoot(AppContext.BaseDirectory)
            .ConfigureAppConfiguration(c => c.AddInMemoryCollection(new Dictionary<string, string?>(Settings) { ["Storage:Root"] = StorageRoot }))
            .ConfigureServices((context, services) =>
            {
                services.AddSingleton(Store);
                services.AddSingleton(TimeProvider.System);
                services.AddQwenBatchDashboard(context.Configuration);
                services.AddSingleton<IStartupFilter, RemoteAddressFilter>();
            })
            .Configure(app => app.UseQwenBatchDashboard()));

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

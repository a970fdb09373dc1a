using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.Manifests;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Micro;

/// <summary>A fresh migrated PostgreSQL database (the test fixture's server) with one imported batch of generated jobs.</summary>
internal sealed class MicroDatabase : IAsyncDisposable
{
    private MicroDatabase(string connectionString, PostgresStore store, NpgsqlDataSource raw)
    {
        ConnectionString = connectionString;
        Store = store;
        Raw = raw;
    }

    public string ConnectionString { get; }

    public PostgresStore Store { get; }

    /// <summary>A separate pool for the benchmarks' own SQL (baselines, resets).</summary>
    public NpgsqlDataSource Raw { get; }

    public static async Task<MicroDatabase> CreateAsync(int jobs)
    {
        var connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("micro");
        var store = new PostgresStore(connectionString, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(CancellationToken.None);
        if (jobs > 0)
        {
            var manifest = ManifestFile.Generate(jobs);
            var options = new ManifestOptions { Provider = "odirouter" };
            var batch = BatchPlanner.Batch(manifest, null, "odirouter", Path.GetTempPath());
            var planned = ManifestReader.Open(manifest, options).Jobs().SelectMany(j => BatchPlanner.Jobs(j, "odirouter")).ToList();
            await store.ImportBatchAsync(batch, planned, CancellationToken.None);
            File.Delete(manifest);
        }

        return new MicroDatabase(connectionString, store, NpgsqlDataSource.Create(connectionString));
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var command = Raw.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        await Raw.DisposeAsync();
    }
}

/// <summary>The manifest the import benchmark uses too: <c>id,prompt,images,n,sku</c> with URL images.</summary>
internal static class ManifestFile
{
    public static string Generate(int rows)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("qwenbatch-micro-").FullName, "products.csv");
        using var writer = new StreamWriter(path);
        writer.WriteLine("id,prompt,images,n,sku");
        for (var i = 1; i <= rows; i++)
        {
            writer.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"product-{i:D6},\"White studio background, keep the product unchanged, item {i}\",https://cdn.example.com/products/{i:D6}.jpg,1,SKU-{i:D6}"));
        }

        return path;
    }
}

using Npgsql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>One database per test class, so classes run in parallel without sharing rows.</summary>
public sealed class PostgresDatabaseFixture : IAsyncLifetime
{
    private readonly List<string> _databases = [];
    private PostgresServer? _server;

    /// <summary>The class's database; tests empty it before they start.</summary>
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.GetAsync();
        ConnectionString = await CreateDatabaseAsync();
    }

    /// <summary>Another empty database (no schema), dropped with the fixture.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var connectionString = await _server!.CreateDatabaseAsync("storage_tests");
        lock (_databases)
        {
            _databases.Add(connectionString);
        }

        return connectionString;
    }

    public async Task TruncateAsync()
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        // Every table the migrations made, except the record of the migrations themselves, so new tables are cleaned too.
        await using var command = new NpgsqlCommand(
            """
            DO $$ BEGIN
                EXECUTE (SELECT 'TRUNCATE ' || string_agg(quote_ident(tablename), ', ') || ' RESTART IDENTITY CASCADE'
                         FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations');
            END $$
            """, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var database in _databases)
        {
            await _server!.DropDatabaseAsync(database);
        }
    }
}

using Npgsql;
using QwenBatch.Storage.PostgreSql;

namespace QwenBatch.Storage.Tests.PostgreSql;

/// <summary>The pool prepares the statements it uses again and again, unless the connection string says not to (PgBouncer).</summary>
public sealed class PreparedStatementsTests
{
    [Fact]
    public void Pooled_NothingSaid_PreparesStatementsAndNeverResetsConnections()
    {
        var pooled = new NpgsqlConnectionStringBuilder(PostgresStore.Pooled("Host=db;Database=q;Username=u"));

        pooled.MaxAutoPrepare.ShouldBe(PostgresStore.AutoPreparedStatements);
        pooled.NoResetOnClose.ShouldBeTrue();
    }

    [Theory]
    [InlineData("Host=db;Database=q;Max Auto Prepare=0", 0)]
    [InlineData("Host=db;Database=q;maxautoprepare=0", 0)]
    [InlineData("Host=db;Database=q;Max Auto Prepare=8", 8)]
    public void Pooled_ConnectionStringSetsMaxAutoPrepare_ItsValueIsKept(string connectionString, int expected) =>
        new NpgsqlConnectionStringBuilder(PostgresStore.Pooled(connectionString)).MaxAutoPrepare.ShouldBe(expected);
}

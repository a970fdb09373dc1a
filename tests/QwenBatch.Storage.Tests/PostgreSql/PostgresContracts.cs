using QwenBatch.Storage.Tests.Batches;
using QwenBatch.Storage.Tests.Continuations;
using QwenBatch.Storage.Tests.Edits;
using QwenBatch.Storage.Tests.FlowControl;
using QwenBatch.Storage.Tests.Reports;
using QwenBatch.Storage.Tests.Retention;
using QwenBatch.Storage.Tests.Schedules;
using QwenBatch.Storage.Tests.Schema;
using QwenBatch.Storage.Tests.Uploads;
using QwenBatch.Storage.Tests.Webhooks;

namespace QwenBatch.Storage.Tests.PostgreSql;

// Every role's contract on PostgreSQL, each class with a database of its own (so the classes run in parallel).

public sealed class PostgresBatchStoreTests(PostgresDatabaseFixture database) : BatchStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresEditStoreTests(PostgresDatabaseFixture database) : EditStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresFeedTests(PostgresDatabaseFixture database) : FeedContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresFlowControlTests(PostgresDatabaseFixture database) : FlowControlContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresReportReadsTests(PostgresDatabaseFixture database) : ReportReadsContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresScheduleStoreTests(PostgresDatabaseFixture database) : ScheduleStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresContinuationStoreTests(PostgresDatabaseFixture database) : ContinuationStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresRetentionStoreTests(PostgresDatabaseFixture database) : RetentionStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresMigrationTests(PostgresDatabaseFixture database) : MigrationContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

// The contracts that import batches again, with staged chunks of two edits: every import of more than two edits is staged
// (migration 10) and becomes rows only through the feeder's rounds and the reads that expand, so each of these tests proves
// that staged edits behave as imported ones — fed in import order, counted, cancelled, resumed, purged.

public sealed class PostgresStagedBatchStoreTests(PostgresDatabaseFixture database) : BatchStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database, stagedChunkSize: 2);
}

public sealed class PostgresStagedEditStoreTests(PostgresDatabaseFixture database) : EditStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database, stagedChunkSize: 2);
}

public sealed class PostgresStagedFeedTests(PostgresDatabaseFixture database) : FeedContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database, stagedChunkSize: 2);
}

public sealed class PostgresStagedReportReadsTests(PostgresDatabaseFixture database) : ReportReadsContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database, stagedChunkSize: 2);
}

public sealed class PostgresStagedRetentionStoreTests(PostgresDatabaseFixture database) : RetentionStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database, stagedChunkSize: 2);
}

public sealed class PostgresStagedContinuationStoreTests(PostgresDatabaseFixture database) : ContinuationStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database, stagedChunkSize: 2);
}

public sealed class PostgresUploadStoreTests(PostgresDatabaseFixture database) : UploadStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

public sealed class PostgresWebhookStoreTests(PostgresDatabaseFixture database) : WebhookStoreContract, IClassFixture<PostgresDatabaseFixture>
{
    protected override StoreBackend Backend { get; } = new PostgresBackend(database);
}

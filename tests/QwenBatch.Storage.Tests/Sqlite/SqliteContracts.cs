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

namespace QwenBatch.Storage.Tests.Sqlite;

// Every role's contract on SQLite: a fresh file per test.

public sealed class SqliteBatchStoreTests : BatchStoreContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteEditStoreTests : EditStoreContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteFeedTests : FeedContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteFlowControlTests : FlowControlContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteReportReadsTests : ReportReadsContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteScheduleStoreTests : ScheduleStoreContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteContinuationStoreTests : ContinuationStoreContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteRetentionStoreTests : RetentionStoreContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteMigrationTests : MigrationContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteUploadStoreTests : UploadStoreContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

public sealed class SqliteWebhookStoreTests : WebhookStoreContract
{
    protected override StoreBackend Backend { get; } = new SqliteBackend();
}

// Hangfire keeps process-wide settings that every host of this assembly sets when it starts: the log provider (see
// HangfireLogs) and the job activator. Two hosts alive at once would leave one logging through a factory the other's
// test already disposed, so the classes run one at a time. That also keeps the load modest on a shared 2-core machine:
// each class starts PostgreSQL databases, an engine or Chromium.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

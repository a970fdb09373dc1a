namespace QwenBatch.Storage.Sqlite;

/// <summary>Numbered schema migrations; applied in order, each once, inside one write transaction (SQLite's lock).</summary>
internal static partial class SqliteMigrations
{
    /// <summary>Every migration, by version (8 was never released; 10 to 12 change nothing here, so both backends number alike).</summary>
    public static readonly IReadOnlyList<(int Version, string Name, string Sql)> All = [.. Engine(), .. Hangfire(), .. Uploads(), .. Webhooks()];

    private static (int Version, string Name, string Sql)[] Engine() =>
    [
        (1, "jobs, batches, history, servers", """
            CREATE TABLE batches (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                name        TEXT NOT NULL UNIQUE,
                source      TEXT NOT NULL,
                provider    TEXT NOT NULL,
                storage_dir TEXT NOT NULL,
                created_at  INTEGER NOT NULL
            );

            CREATE TABLE jobs (
                id                INTEGER PRIMARY KEY AUTOINCREMENT,
                batch_id          INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
                key               TEXT NOT NULL,
                content_hash      TEXT NOT NULL,
                state             TEXT NOT NULL CHECK (state IN ('pending', 'submitting', 'at_provider', 'downloading',
                                                                 'succeeded', 'failed', 'cancelled', 'held')),
                provider          TEXT NOT NULL,
                spec              TEXT NOT NULL,
                request_id        TEXT,
                attempt           INTEGER NOT NULL DEFAULT 0,
                accepted_submits  INTEGER NOT NULL DEFAULT 0,
                uncertain_submits INTEGER NOT NULL DEFAULT 0,
                polls             INTEGER NOT NULL DEFAULT 0,
                due_at            INTEGER NOT NULL,
                lease_owner       TEXT,
                lease_expires_at  INTEGER,
                outputs           TEXT NOT NULL DEFAULT '[]',
                files             TEXT NOT NULL DEFAULT '[]',
                cost_micros       INTEGER NOT NULL DEFAULT 0,
                error             TEXT,
                created_at        INTEGER NOT NULL,
                submitted_at      INTEGER,
                finished_at       INTEGER,
                updated_at        INTEGER NOT NULL,
                UNIQUE (batch_id, key, content_hash)
            );

            CREATE INDEX jobs_due ON jobs (due_at, id)
                WHERE lease_owner IS NULL AND state IN ('pending', 'at_provider', 'downloading');
            CREATE INDEX jobs_leased ON jobs (lease_owner, lease_expires_at) WHERE lease_owner IS NOT NULL;
            CREATE INDEX jobs_batch_state ON jobs (batch_id, state);

            CREATE TABLE job_history (
                id         INTEGER PRIMARY KEY AUTOINCREMENT,
                job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                at         INTEGER NOT NULL,
                from_state TEXT,
                to_state   TEXT NOT NULL,
                reason     TEXT,
                server_id  TEXT
            );
            CREATE INDEX job_history_job ON job_history (job_id, id);

            CREATE TABLE servers (
                id           TEXT PRIMARY KEY,
                host         TEXT NOT NULL,
                pid          INTEGER NOT NULL,
                concurrency  INTEGER NOT NULL,
                started_at   INTEGER NOT NULL,
                heartbeat_at INTEGER NOT NULL
            );
            """),
        (2, "flow control: budgets, cancel, shared rate limits", """
            ALTER TABLE batches ADD COLUMN budget_micros INTEGER;
            ALTER TABLE batches ADD COLUMN spent_micros INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE batches ADD COLUMN reserved_micros INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE batches ADD COLUMN cancel_requested_at INTEGER;

            ALTER TABLE jobs ADD COLUMN reserved_micros INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE jobs ADD COLUMN started_at INTEGER;

            CREATE INDEX jobs_in_flight ON jobs (provider)
                WHERE state IN ('submitting', 'at_provider') OR (state = 'pending' AND lease_owner IS NOT NULL);

            CREATE TABLE rate_limits (
                account      TEXT PRIMARY KEY,
                tat          INTEGER NOT NULL,
                granted_at   INTEGER NOT NULL,
                paused_until INTEGER,
                factor       REAL NOT NULL DEFAULT 1
            );
            """),
        (3, "dashboard: counters by batch and state, spend by day, jobs by state", """
            -- Counts kept in step by triggers inside each writing transaction, so the dashboard never counts jobs.
            CREATE TABLE batch_state_counts (
                batch_id INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
                state    TEXT NOT NULL,
                count    INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (batch_id, state)
            );
            INSERT INTO batch_state_counts (batch_id, state, count) SELECT batch_id, state, count(*) FROM jobs GROUP BY batch_id, state;

            -- Settled cost per UTC day (days since the epoch of the job's updated_at) and provider.
            CREATE TABLE spend_by_day (
                day          INTEGER NOT NULL,
                provider     TEXT NOT NULL,
                spent_micros INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (day, provider)
            );
            INSERT INTO spend_by_day (day, provider, spent_micros)
            SELECT updated_at / 86400000, provider, sum(cost_micros) FROM jobs WHERE cost_micros <> 0 GROUP BY 1, 2;

            CREATE TRIGGER jobs_counters_insert AFTER INSERT ON jobs BEGIN
                INSERT OR IGNORE INTO batch_state_counts (batch_id, state, count) VALUES (new.batch_id, new.state, 0);
                UPDATE batch_state_counts SET count = count + 1 WHERE batch_id = new.batch_id AND state = new.state;
            END;
            CREATE TRIGGER jobs_counters_update AFTER UPDATE OF state ON jobs WHEN new.state <> old.state BEGIN
                UPDATE batch_state_counts SET count = count - 1 WHERE batch_id = old.batch_id AND state = old.state;
                INSERT OR IGNORE INTO batch_state_counts (batch_id, state, count) VALUES (new.batch_id, new.state, 0);
                UPDATE batch_state_counts SET count = count + 1 WHERE batch_id = new.batch_id AND state = new.state;
            END;
            CREATE TRIGGER jobs_counters_delete AFTER DELETE ON jobs BEGIN
                UPDATE batch_state_counts SET count = count - 1 WHERE batch_id = old.batch_id AND state = old.state;
            END;
            CREATE TRIGGER jobs_spend_update AFTER UPDATE OF cost_micros ON jobs WHEN new.cost_micros <> old.cost_micros BEGIN
                INSERT OR IGNORE INTO spend_by_day (day, provider, spent_micros) VALUES (new.updated_at / 86400000, new.provider, 0);
                UPDATE spend_by_day SET spent_micros = spent_micros + new.cost_micros - old.cost_micros
                WHERE day = new.updated_at / 86400000 AND provider = new.provider;
            END;

            CREATE INDEX jobs_state_id ON jobs (state, id);
            """),
        (4, "schedules, their claimed occurrences, continuations, and the retention index", """
            CREATE TABLE schedules (
                name         TEXT PRIMARY KEY,
                cron         TEXT NOT NULL,
                time_zone    TEXT NOT NULL,
                manifest     TEXT NOT NULL,
                provider     TEXT NOT NULL,
                storage_root TEXT NOT NULL,
                budget_micros INTEGER,
                catch_up     TEXT NOT NULL CHECK (catch_up IN ('once', 'skip')),
                paused       INTEGER NOT NULL DEFAULT 0,
                next_at      INTEGER NOT NULL,
                created_at   INTEGER NOT NULL,
                last_run_at  INTEGER,
                last_batch   TEXT,
                last_error   TEXT
            );

            -- The exactly-once key: whichever worker inserts (schedule, occurrence) first makes the batch.
            CREATE TABLE schedule_runs (
                schedule   TEXT NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
                occurrence INTEGER NOT NULL,
                owner      TEXT NOT NULL,
                claimed_at INTEGER NOT NULL,
                batch_name TEXT,
                error      TEXT,
                PRIMARY KEY (schedule, occurrence)
            );

            -- Continuations: what follows a batch when it settles; claimed once by a guarded update.
            ALTER TABLE batches ADD COLUMN then_manifest TEXT;
            ALTER TABLE batches ADD COLUMN then_webhook TEXT;
            ALTER TABLE batches ADD COLUMN then_claimed_at INTEGER;
            ALTER TABLE batches ADD COLUMN then_result TEXT;

            -- Retention looks for old batches oldest first.
            CREATE INDEX batches_created ON batches (created_at, id);
            """),
        (5, "daily budgets per provider account, learned provider latencies", """
            -- The daily budget adds an account's open reservations to its spend today: only reserved jobs are indexed.
            CREATE INDEX jobs_reserved ON jobs (provider) WHERE reserved_micros <> 0;

            -- What tasks took at the provider, by provider, n and size (size '' when the provider's default).
            CREATE TABLE provider_latency (
                provider   TEXT NOT NULL,
                n          INTEGER NOT NULL,
                size       TEXT NOT NULL,
                seconds    REAL NOT NULL,
                samples    INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (provider, n, size)
            );
            """),
        (6, "exactly-once occurrences and continuations (leased claims), failed batches", """
            -- As on PostgreSQL: open claims carry a lease; occurrences claimed before this migration count as finished.
            ALTER TABLE schedule_runs ADD COLUMN lease_expires_at INTEGER;
            ALTER TABLE schedule_runs ADD COLUMN finished_at INTEGER;
            UPDATE schedule_runs SET finished_at = claimed_at;
            CREATE INDEX schedule_runs_open ON schedule_runs (lease_expires_at) WHERE finished_at IS NULL;

            ALTER TABLE batches ADD COLUMN then_lease_expires_at INTEGER;
            ALTER TABLE batches ADD COLUMN failure TEXT;
            """),
        (7, "dashboard: outcomes per hour, rescues by server", """
            -- Succeeded and failed per UTC hour (milliseconds since the epoch of the hour's start), for the overview's history
            -- graph. Events, like Hangfire's stats counters: a requeue or a purge does not take an outcome back.
            CREATE TABLE job_outcomes_by_hour (
                hour  INTEGER NOT NULL,
                state TEXT NOT NULL,
                count INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (hour, state)
            );
            INSERT INTO job_outcomes_by_hour (hour, state, count)
            SELECT coalesce(finished_at, updated_at) / 3600000 * 3600000, state, count(*) FROM jobs
            WHERE state IN ('succeeded', 'failed') GROUP BY 1, 2;

            CREATE TRIGGER jobs_outcomes_insert AFTER INSERT ON jobs WHEN new.state IN ('succeeded', 'failed') BEGIN
                INSERT OR IGNORE INTO job_outcomes_by_hour (hour, state, count) VALUES (coalesce(new.finished_at, new.updated_at) / 3600000 * 3600000, new.state, 0);
                UPDATE job_outcomes_by_hour SET count = count + 1 WHERE hour = coalesce(new.finished_at, new.updated_at) / 3600000 * 3600000 AND state = new.state;
            END;
            CREATE TRIGGER jobs_outcomes_update AFTER UPDATE OF state ON jobs WHEN new.state <> old.state AND new.state IN ('succeeded', 'failed') BEGIN
                INSERT OR IGNORE INTO job_outcomes_by_hour (hour, state, count) VALUES (coalesce(new.finished_at, new.updated_at) / 3600000 * 3600000, new.state, 0);
                UPDATE job_outcomes_by_hour SET count = count + 1 WHERE hour = coalesce(new.finished_at, new.updated_at) / 3600000 * 3600000 AND state = new.state;
            END;

            -- The servers page: which jobs the rescuer took from a server. (The jobs text filter stays a scan on SQLite: the
            -- embedded store serves one machine's batches, not a million-job fleet.)
            CREATE INDEX job_history_rescues ON job_history (id) WHERE reason LIKE 'lease expired%';
            """),
        (9, "manifest revisions: a changed row's job supersedes the older job of the same id", """
            -- A manifest id has one current job per batch; a changed row's new job replaces it, the older one keeps its
            -- history and points at its successor. revision numbers a key's jobs, so their output files stay apart.
            ALTER TABLE jobs ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
            ALTER TABLE jobs ADD COLUMN replaces INTEGER;
            ALTER TABLE jobs ADD COLUMN superseded_by INTEGER;

            -- Batches imported before this migration may hold several jobs of one id: the newest is current.
            UPDATE jobs SET
                revision = (SELECT count(*) FROM jobs o WHERE o.batch_id = jobs.batch_id AND o.key = jobs.key AND o.id <= jobs.id),
                superseded_by = (SELECT min(o.id) FROM jobs o WHERE o.batch_id = jobs.batch_id AND o.key = jobs.key AND o.id > jobs.id),
                replaces = (SELECT max(o.id) FROM jobs o WHERE o.batch_id = jobs.batch_id AND o.key = jobs.key AND o.id < jobs.id)
            WHERE EXISTS (SELECT 1 FROM jobs o WHERE o.batch_id = jobs.batch_id AND o.key = jobs.key AND o.id <> jobs.id);

            -- The rule both stores enforce: one current job per (batch, id). It also refuses an import that names one id twice.
            CREATE UNIQUE INDEX jobs_current_key ON jobs (batch_id, key) WHERE superseded_by IS NULL;
            """),
        (10, "staged imports (PostgreSQL's): nothing to change here", """
            -- PostgreSQL stages a large import's jobs a chunk per row and expands them as work needs them. The embedded store
            -- writes a row per job at import (one process, no index contention to spare it from); the version is kept so
            -- both backends' migration numbers mean the same thing.
            SELECT 1;
            """),
        (11, "batch counters moved by PostgreSQL's statements, not its update trigger: nothing to change here", """
            -- PostgreSQL dropped its statement-level update trigger (a join of every UPDATE's old and new rows) for counters
            -- moved by the statements themselves. The embedded store's row triggers fire only when a job's state changes and
            -- stay; the version is kept so both backends' migration numbers mean the same thing.
            SELECT 1;
            """),
        (12, "PostgreSQL's staged chunks compressed with lz4: nothing to change here", """
            -- The embedded store stages nothing; the version is kept so both backends' migration numbers mean the same thing.
            SELECT 1;
            """),
    ];
}

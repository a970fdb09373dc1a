namespace QwenBatch.Storage.Sqlite;

/// <summary>Migration 13: the engine moves onto Hangfire.</summary>
internal static partial class SqliteMigrations
{
    private static (int Version, string Name, string Sql)[] Hangfire() =>
    [
        (13, "the engine moves onto Hangfire", """
            -- As on PostgreSQL: the home-made engine's leases, servers table, rescuer, hourly outcomes and schedule claims go,
            -- and nothing in flight is lost. @now is the store's clock. The counters' row triggers move the counts.

            -- An edit the old engine was submitting when it stopped may or may not have reached the provider: it goes back
            -- to the backlog, its uncertain submit counted, and its history says why. A pending edit holds no reservation now
            -- (the feeder reserves when it hands it to Hangfire): those the old engine left on pending edits are released.
            INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
            SELECT id, @now, 'submitting', 'pending', 'the engine that was submitting it stopped; the submit may have reached the provider', lease_owner
            FROM jobs WHERE state = 'submitting' AND lease_owner IS NOT NULL ORDER BY id;
            UPDATE jobs SET state = 'pending', uncertain_submits = uncertain_submits + 1, due_at = min(due_at, @now), updated_at = @now
            WHERE state = 'submitting' AND lease_owner IS NOT NULL;
            UPDATE batches SET reserved_micros = reserved_micros
                - (SELECT coalesce(sum(reserved_micros), 0) FROM jobs j WHERE j.batch_id = batches.id AND j.state = 'pending')
            WHERE id IN (SELECT batch_id FROM jobs WHERE state = 'pending' AND reserved_micros <> 0);
            UPDATE jobs SET reserved_micros = 0 WHERE state = 'pending' AND reserved_micros <> 0;

            -- The jobs table is rebuilt (SQLite cannot change a CHECK or drop indexed columns in place): 'queued' allowed,
            -- the lease columns gone (every lease just ends; an edit at the provider keeps its request id and due time),
            -- hangfire_job added. Its triggers and indexes go with the old table and are made again below.
            CREATE TABLE jobs_new (
                id                INTEGER PRIMARY KEY AUTOINCREMENT,
                batch_id          INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
                key               TEXT NOT NULL,
                content_hash      TEXT NOT NULL,
                state             TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'submitting', 'at_provider', 'downloading',
                                                                 'succeeded', 'failed', 'cancelled', 'held')),
                provider          TEXT NOT NULL,
                spec              TEXT NOT NULL,
                request_id        TEXT,
                attempt           INTEGER NOT NULL DEFAULT 0,
                accepted_submits  INTEGER NOT NULL DEFAULT 0,
                uncertain_submits INTEGER NOT NULL DEFAULT 0,
                polls             INTEGER NOT NULL DEFAULT 0,
                due_at            INTEGER NOT NULL,
                hangfire_job      TEXT,
                outputs           TEXT NOT NULL DEFAULT '[]',
                files             TEXT NOT NULL DEFAULT '[]',
                cost_micros       INTEGER NOT NULL DEFAULT 0,
                error             TEXT,
                created_at        INTEGER NOT NULL,
                submitted_at      INTEGER,
                finished_at       INTEGER,
                updated_at        INTEGER NOT NULL,
                reserved_micros   INTEGER NOT NULL DEFAULT 0,
                cancel_requested  INTEGER NOT NULL DEFAULT 0,
                started_at        INTEGER,
                revision          INTEGER NOT NULL DEFAULT 1,
                replaces          INTEGER,
                superseded_by     INTEGER,
                UNIQUE (batch_id, key, content_hash)
            );
            INSERT INTO jobs_new (id, batch_id, key, content_hash, state, provider, spec, request_id, attempt, accepted_submits,
                uncertain_submits, polls, due_at, outputs, files, cost_micros, error, created_at, submitted_at, finished_at, updated_at,
                reserved_micros, cancel_requested, started_at, revision, replaces, superseded_by)
            SELECT id, batch_id, key, content_hash, state, provider, spec, request_id, attempt, accepted_submits,
                uncertain_submits, polls, due_at, outputs, files, cost_micros, error, created_at, submitted_at, finished_at, updated_at,
                reserved_micros, cancel_requested, started_at, revision, replaces, superseded_by
            FROM jobs ORDER BY id;

            -- AUTOINCREMENT never gives an id twice: the new table goes on from where the old one was, not from its largest
            -- surviving id (retention deleted newer ones).
            INSERT INTO sqlite_sequence (name, seq)
            SELECT 'jobs_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs_new');
            UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0)) WHERE name = 'jobs_new';
            DROP TABLE jobs;
            ALTER TABLE jobs_new RENAME TO jobs;

            CREATE INDEX jobs_batch_state ON jobs (batch_id, state);
            CREATE INDEX jobs_state_id ON jobs (state, id);
            CREATE INDEX jobs_reserved ON jobs (provider) WHERE reserved_micros <> 0;
            CREATE UNIQUE INDEX jobs_current_key ON jobs (batch_id, key) WHERE superseded_by IS NULL;
            -- The feeder, the poller, the edits that stood still, a provider's edits in flight (queued ones included).
            CREATE INDEX jobs_pending_due ON jobs (due_at, id) WHERE state = 'pending';
            CREATE INDEX jobs_at_provider_due ON jobs (due_at, id) WHERE state = 'at_provider';
            CREATE INDEX jobs_still ON jobs (updated_at, id) WHERE state IN ('queued', 'submitting', 'downloading');
            CREATE INDEX jobs_in_flight ON jobs (provider) WHERE state IN ('queued', 'submitting', 'at_provider');

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

            -- Hangfire has servers with heartbeats and its own history graph; the rescuer is gone with the leases.
            DROP TABLE servers;
            DROP TABLE job_outcomes_by_hour;
            DROP INDEX IF EXISTS job_history_rescues;

            -- Hangfire's recurring jobs fire schedules: no next occurrence or claim is kept here, only what each occurrence
            -- made. An occurrence claimed and never finished keeps its claim time as when it was recorded.
            ALTER TABLE schedules DROP COLUMN next_at;
            DROP INDEX IF EXISTS schedule_runs_open;
            UPDATE schedule_runs SET finished_at = claimed_at WHERE finished_at IS NULL;
            ALTER TABLE schedule_runs RENAME COLUMN finished_at TO recorded_at;
            ALTER TABLE schedule_runs DROP COLUMN owner;
            ALTER TABLE schedule_runs DROP COLUMN claimed_at;
            ALTER TABLE schedule_runs DROP COLUMN lease_expires_at;
            """),
    ];
}

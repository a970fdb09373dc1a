namespace QwenBatch.Storage.PostgreSql;

/// <summary>Migration 13: the engine moves onto Hangfire.</summary>
internal static partial class PostgresMigrations
{
    private static (int Version, string Name, string Sql)[] Hangfire() =>
    [
        (13, "the engine moves onto Hangfire", """
            -- Hangfire now runs each edit's steps as a job, with its own servers, retries, recurring jobs and history graph:
            -- the home-made engine's leases, servers table, rescuer, hourly outcomes and schedule claims go. Nothing in flight
            -- is lost. "Now" is the store's clock (PostgresStore.MigrateAsync sets it for this transaction).

            -- An edit the old engine was submitting when it stopped may or may not have reached the provider: it goes back
            -- to the backlog, its uncertain submit counted (the report shows the window was hit), and its history says why.
            -- The counters move in the same statement, as every state change does since migration 11.
            WITH lost AS (
                SELECT id, lease_owner FROM jobs WHERE state = 'submitting' AND lease_owner IS NOT NULL ORDER BY id FOR UPDATE
            ), returned AS (
                UPDATE jobs j SET state = 'pending', uncertain_submits = j.uncertain_submits + 1,
                    due_at = least(j.due_at, current_setting('qwenbatch.now')::timestamptz),
                    updated_at = current_setting('qwenbatch.now')::timestamptz
                FROM lost WHERE j.id = lost.id
                RETURNING j.id, j.batch_id, lost.lease_owner
            ), counted AS (
                INSERT INTO batch_state_counts AS c (batch_id, state, count)
                SELECT batch_id, state, sum(delta) FROM (
                    SELECT batch_id, 'submitting'::text AS state, -1 AS delta FROM returned
                    UNION ALL
                    SELECT batch_id, 'pending'::text, 1 FROM returned
                ) m
                GROUP BY batch_id, state ORDER BY batch_id, state
                ON CONFLICT (batch_id, state) DO UPDATE SET count = c.count + excluded.count
            )
            INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
            SELECT id, current_setting('qwenbatch.now')::timestamptz, 'submitting', 'pending',
                   'the engine that was submitting it stopped; the submit may have reached the provider', lease_owner
            FROM returned ORDER BY id;

            -- A pending edit holds no reservation now: the feeder reserves when it hands the edit to Hangfire. The old engine
            -- reserved while a job was leased in pending, and a rescue left that reservation on it.
            WITH held AS (
                SELECT id, batch_id, reserved_usd FROM jobs WHERE state = 'pending' AND reserved_usd <> 0 ORDER BY id FOR UPDATE
            ), released AS (
                UPDATE jobs j SET reserved_usd = 0 FROM held WHERE j.id = held.id RETURNING held.batch_id, held.reserved_usd
            )
            UPDATE batches b SET reserved_usd = b.reserved_usd - r.released
            FROM (SELECT batch_id, sum(reserved_usd) AS released FROM released GROUP BY batch_id) r
            WHERE b.id = r.batch_id;

            -- Every other lease just ends (an edit at the provider keeps its request id and due time; the poller takes it).
            DROP INDEX IF EXISTS jobs_due;
            DROP INDEX IF EXISTS jobs_leased;
            DROP INDEX IF EXISTS jobs_in_flight;
            ALTER TABLE jobs DROP COLUMN lease_owner, DROP COLUMN lease_expires_at;

            -- Which Hangfire job runs the edit; written only by the feeder's binding.
            ALTER TABLE jobs ADD COLUMN hangfire_job text;

            -- 'queued': handed to Hangfire by the feeder, its cost reserved and its request slot booked.
            DO $$
            DECLARE c record;
            BEGIN
                FOR c IN SELECT conname FROM pg_constraint
                         WHERE conrelid = 'jobs'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%state%' LOOP
                    EXECUTE format('ALTER TABLE jobs DROP CONSTRAINT %I', c.conname);
                END LOOP;
            END $$;
            ALTER TABLE jobs ADD CONSTRAINT jobs_state_check CHECK (state IN ('pending', 'queued', 'submitting', 'at_provider',
                'downloading', 'succeeded', 'failed', 'cancelled', 'held'));

            -- Hangfire has servers with heartbeats, and its own history graph; the rescuer is gone with the leases.
            DROP TABLE servers;
            DROP TRIGGER jobs_outcomes_insert ON jobs;
            DROP FUNCTION qwenbatch_job_outcomes_inserted();
            DROP TABLE job_outcomes_by_hour;
            DROP INDEX IF EXISTS job_history_rescues;

            -- Hangfire's recurring jobs fire schedules (Cronos, the schedule's time zone, once per fleet): no next occurrence
            -- or claim is kept here, only what each occurrence made, recorded (and recorded again) by (schedule, occurrence).
            -- An occurrence claimed and never finished keeps its claim time as when it was recorded.
            ALTER TABLE schedules DROP COLUMN next_at;
            DROP INDEX IF EXISTS schedule_runs_open;
            UPDATE schedule_runs SET finished_at = claimed_at WHERE finished_at IS NULL;
            ALTER TABLE schedule_runs RENAME COLUMN finished_at TO recorded_at;
            ALTER TABLE schedule_runs ALTER COLUMN recorded_at SET NOT NULL;
            ALTER TABLE schedule_runs DROP COLUMN owner, DROP COLUMN claimed_at, DROP COLUMN lease_expires_at;

            -- The feeder: due pending edits, oldest due first.
            CREATE INDEX jobs_pending_due ON jobs (due_at, id) WHERE state = 'pending';
            -- The poller: edits at the provider, oldest due first.
            CREATE INDEX jobs_at_provider_due ON jobs (due_at, id) WHERE state = 'at_provider';
            -- Edits whose Hangfire job has a step to run, oldest write first (finding the ones that stood still).
            CREATE INDEX jobs_still ON jobs (updated_at, id) WHERE state IN ('queued', 'submitting', 'downloading');
            -- A provider's edits in flight for its MaxInFlight, queued ones included.
            CREATE INDEX jobs_in_flight ON jobs (provider) WHERE state IN ('queued', 'submitting', 'at_provider');
            """),
    ];
}

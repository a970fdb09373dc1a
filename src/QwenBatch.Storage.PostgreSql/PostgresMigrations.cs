namespace QwenBatch.Storage.PostgreSql;

/// <summary>Numbered schema migrations; applied in order, each once, under an advisory lock.</summary>
internal static class PostgresMigrations
{
    /// <summary>Any constant works; it names the lock all QwenBatch processes take while migrating.</summary>
    public const long AdvisoryLockKey = 0x5177_656e_4261_7463;

    public static readonly IReadOnlyList<(int Version, string Name, string Sql)> All =
    [
        (1, "jobs, batches, history, servers", """
            CREATE TABLE batches (
                id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name        text NOT NULL UNIQUE,
                source      text NOT NULL,
                provider    text NOT NULL,
                storage_dir text NOT NULL,
                created_at  timestamptz NOT NULL
            );

            CREATE TABLE jobs (
                id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                batch_id          bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
                key               text NOT NULL,
                content_hash      text NOT NULL,
                state             text NOT NULL CHECK (state IN ('pending', 'submitting', 'at_provider', 'downloading',
                                                                 'succeeded', 'failed', 'cancelled', 'held')),
                provider          text NOT NULL,
                spec              jsonb NOT NULL,
                request_id        text,
                attempt           int NOT NULL DEFAULT 0,
                accepted_submits  int NOT NULL DEFAULT 0,
                uncertain_submits int NOT NULL DEFAULT 0,
                polls             int NOT NULL DEFAULT 0,
                due_at            timestamptz NOT NULL,
                lease_owner       text,
                lease_expires_at  timestamptz,
                outputs           jsonb NOT NULL DEFAULT '[]',
                files             jsonb NOT NULL DEFAULT '[]',
                cost_usd          numeric(14, 6) NOT NULL DEFAULT 0,
                error             text,
                created_at        timestamptz NOT NULL,
                submitted_at      timestamptz,
                finished_at       timestamptz,
                updated_at        timestamptz NOT NULL,
                UNIQUE (batch_id, key, content_hash)
            );

            -- The claim query's index: only jobs that are waiting, in due order.
            CREATE INDEX jobs_due ON jobs (due_at, id)
                WHERE lease_owner IS NULL AND state IN ('pending', 'at_provider', 'downloading');
            CREATE INDEX jobs_leased ON jobs (lease_owner, lease_expires_at) WHERE lease_owner IS NOT NULL;
            CREATE INDEX jobs_batch_state ON jobs (batch_id, state);

            CREATE TABLE job_history (
                id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                job_id     bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
                at         timestamptz NOT NULL,
                from_state text,
                to_state   text NOT NULL,
                reason     text,
                server_id  text
            );
            CREATE INDEX job_history_job ON job_history (job_id, id);

            CREATE TABLE servers (
                id           text PRIMARY KEY,
                host         text NOT NULL,
                pid          int NOT NULL,
                concurrency  int NOT NULL,
                started_at   timestamptz NOT NULL,
                heartbeat_at timestamptz NOT NULL
            );
            """),
        (2, "flow control: budgets, cancel, shared rate limits", """
            ALTER TABLE batches
                ADD COLUMN budget_usd numeric(14, 6),
                ADD COLUMN spent_usd numeric(14, 6) NOT NULL DEFAULT 0,
                ADD COLUMN reserved_usd numeric(14, 6) NOT NULL DEFAULT 0,
                ADD COLUMN cancel_requested_at timestamptz;

            ALTER TABLE jobs
                ADD COLUMN reserved_usd numeric(14, 6) NOT NULL DEFAULT 0,
                ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false,
                ADD COLUMN started_at timestamptz;

            -- Tasks at the provider per provider, for MaxInFlight at claim time.
            CREATE INDEX jobs_in_flight ON jobs (provider)
                WHERE state IN ('submitting', 'at_provider') OR (state = 'pending' AND lease_owner IS NOT NULL);

            -- One row per provider account: the GCRA "theoretical arrival time" shared by every worker.
            CREATE TABLE rate_limits (
                account      text PRIMARY KEY,
                tat          timestamptz NOT NULL,
                granted_at   timestamptz NOT NULL,
                paused_until timestamptz,
                factor       double precision NOT NULL DEFAULT 1
            );
            """),
        (3, "dashboard: counters by batch and state, spend by day, jobs by state", """
            -- Counts kept in step by triggers, so the dashboard never counts jobs per request. Statement-level triggers
            -- with transition tables fold a whole statement (a 100k-row import, a batch cancel) into one upsert; the
            -- rows are upserted in (batch_id, state) order so concurrent statements lock counters in the same order.
            CREATE TABLE batch_state_counts (
                batch_id bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
                state    text NOT NULL,
                count    bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (batch_id, state)
            );
            INSERT INTO batch_state_counts (batch_id, state, count) SELECT batch_id, state, count(*) FROM jobs GROUP BY batch_id, state;

            -- Settled cost per UTC day (of the job's updated_at, set from the application clock) and provider.
            CREATE TABLE spend_by_day (
                day       date NOT NULL,
                provider  text NOT NULL,
                spent_usd numeric(14, 6) NOT NULL DEFAULT 0,
                PRIMARY KEY (day, provider)
            );
            INSERT INTO spend_by_day (day, provider, spent_usd)
            SELECT (updated_at AT TIME ZONE 'UTC')::date, provider, sum(cost_usd) FROM jobs WHERE cost_usd <> 0 GROUP BY 1, 2;

            CREATE FUNCTION qwenbatch_job_counters() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO batch_state_counts AS c (batch_id, state, count)
                    SELECT batch_id, state, count(*) FROM new_jobs GROUP BY batch_id, state ORDER BY batch_id, state
                    ON CONFLICT (batch_id, state) DO UPDATE SET count = c.count + excluded.count;
                ELSIF TG_OP = 'DELETE' THEN
                    UPDATE batch_state_counts c SET count = c.count - d.n
                    FROM (SELECT batch_id, state, count(*) AS n FROM old_jobs GROUP BY batch_id, state) d
                    WHERE c.batch_id = d.batch_id AND c.state = d.state;
                ELSE
                    INSERT INTO batch_state_counts AS c (batch_id, state, count)
                    SELECT batch_id, state, sum(delta) FROM (
                        SELECT o.batch_id, o.state, -1 AS delta FROM old_jobs o JOIN new_jobs n ON n.id = o.id WHERE n.state <> o.state
                        UNION ALL
                        SELECT n.batch_id, n.state, 1 FROM old_jobs o JOIN new_jobs n ON n.id = o.id WHERE n.state <> o.state
                    ) moves GROUP BY batch_id, state ORDER BY batch_id, state
                    ON CONFLICT (batch_id, state) DO UPDATE SET count = c.count + excluded.count;

                    INSERT INTO spend_by_day AS s (day, provider, spent_usd)
                    SELECT (n.updated_at AT TIME ZONE 'UTC')::date, n.provider, sum(n.cost_usd - o.cost_usd)
                    FROM old_jobs o JOIN new_jobs n ON n.id = o.id WHERE n.cost_usd <> o.cost_usd
                    GROUP BY 1, 2 ORDER BY 1, 2
                    ON CONFLICT (day, provider) DO UPDATE SET spent_usd = s.spent_usd + excluded.spent_usd;
                END IF;
                RETURN NULL;
            END $$;

            CREATE TRIGGER jobs_counters_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
                FOR EACH STATEMENT EXECUTE FUNCTION qwenbatch_job_counters();
            CREATE TRIGGER jobs_counters_update AFTER UPDATE ON jobs REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
                FOR EACH STATEMENT EXECUTE FUNCTION qwenbatch_job_counters();
            CREATE TRIGGER jobs_counters_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_jobs
                FOR EACH STATEMENT EXECUTE FUNCTION qwenbatch_job_counters();

            -- The dashboard's state pages: newest first within a state, paged by id.
            CREATE INDEX jobs_state_id ON jobs (state, id);
            """),
        (4, "schedules, their claimed occurrences, continuations, and the retention index", """
            CREATE TABLE schedules (
                name         text PRIMARY KEY,
                cron         text NOT NULL,
                time_zone    text NOT NULL,
                manifest     text NOT NULL,
                provider     text NOT NULL,
                storage_root text NOT NULL,
                budget_usd   numeric(14, 6),
                catch_up     text NOT NULL CHECK (catch_up IN ('once', 'skip')),
                paused       boolean NOT NULL DEFAULT false,
                next_at      timestamptz NOT NULL,
                created_at   timestamptz NOT NULL,
                last_run_at  timestamptz,
                last_batch   text,
                last_error   text
            );

            -- The exactly-once key: whichever worker inserts (schedule, occurrence) first makes the batch.
            CREATE TABLE schedule_runs (
                schedule   text NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
                occurrence timestamptz NOT NULL,
                owner      text NOT NULL,
                claimed_at timestamptz NOT NULL,
                batch_name text,
                error      text,
                PRIMARY KEY (schedule, occurrence)
            );

            -- Continuations: what follows a batch when it settles; claimed once by a guarded update.
            ALTER TABLE batches
                ADD COLUMN then_manifest text,
                ADD COLUMN then_webhook text,
                ADD COLUMN then_claimed_at timestamptz,
                ADD COLUMN then_result text;

            -- Retention looks for old batches oldest first.
            CREATE INDEX batches_created ON batches (created_at, id);
            """),
        (5, "daily budgets per provider account, learned provider latencies", """
            -- The daily budget adds an account's open reservations to its spend today: only reserved jobs are indexed.
            CREATE INDEX jobs_reserved ON jobs (provider) WHERE reserved_usd <> 0;

            -- What tasks took at the provider, by provider, n and size (size '' when the provider's default), so a new
            -- process polls near the expected completion from its first task. Workers flush their estimates now and
            -- then (not per job); the stored estimate blends the fleet's.
            CREATE TABLE provider_latency (
                provider   text NOT NULL,
                n          int NOT NULL,
                size       text NOT NULL,
                seconds    double precision NOT NULL,
                samples    bigint NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (provider, n, size)
            );
            """),
        (6, "exactly-once occurrences and continuations (leased claims), failed batches", """
            -- A claimed occurrence is open until its batch is recorded; an open one whose lease expired (its claimer died)
            -- is taken over by another scheduler. Occurrences claimed before this migration count as finished.
            ALTER TABLE schedule_runs
                ADD COLUMN lease_expires_at timestamptz,
                ADD COLUMN finished_at timestamptz;
            UPDATE schedule_runs SET finished_at = claimed_at;
            CREATE INDEX schedule_runs_open ON schedule_runs (lease_expires_at) WHERE finished_at IS NULL;

            -- A continuation claimed but never recorded may be claimed again once this lease expired.
            -- A batch that failed before it had jobs (a scheduled manifest missing or invalid) carries the errors.
            ALTER TABLE batches
                ADD COLUMN then_lease_expires_at timestamptz,
                ADD COLUMN failure text;
            """),
        (7, "dashboard: outcomes per hour, rescues by server, trigram index for the jobs text filter", """
            -- Succeeded and failed per UTC hour, for the overview's history graph (days are sums of hours). Like Hangfire's
            -- stats counters these record events: a requeue or a purge does not take an outcome back. Triggers of their own
            -- (not a new body for qwenbatch_job_counters) so they stand whatever other migrations do to that function.
            CREATE TABLE job_outcomes_by_hour (
                hour  timestamptz NOT NULL,
                state text NOT NULL,
                count bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (hour, state)
            );
            INSERT INTO job_outcomes_by_hour (hour, state, count)
            SELECT date_trunc('hour', coalesce(finished_at, updated_at), 'UTC'), state, count(*) FROM jobs
            WHERE state IN ('succeeded', 'failed') GROUP BY 1, 2;

            -- Imports: one statement-level upsert per INSERT statement (jobs only arrive settled when seeded by hand).
            CREATE FUNCTION qwenbatch_job_outcomes_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO job_outcomes_by_hour AS c (hour, state, count)
                SELECT date_trunc('hour', coalesce(finished_at, updated_at), 'UTC'), state, count(*) FROM new_jobs
                WHERE state IN ('succeeded', 'failed') GROUP BY 1, 2 ORDER BY 1, 2
                ON CONFLICT (hour, state) DO UPDATE SET count = c.count + excluded.count;
                RETURN NULL;
            END $$;
            CREATE TRIGGER jobs_outcomes_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
                FOR EACH STATEMENT EXECUTE FUNCTION qwenbatch_job_outcomes_inserted();

            -- Transitions: a row trigger whose WHEN is checked without calling any function, so the many updates that do not
            -- finish a job (claims, leases, polls, submits) pay next to nothing; a statement trigger here cost every update a
            -- function call and a join of the transition tables (about a quarter more per single-row update, measured by the
            -- dashboard benchmark). Only single-job transitions finish jobs, so these one-row upserts cannot lock in crossed order.
            CREATE FUNCTION qwenbatch_job_outcome_moved() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO job_outcomes_by_hour AS c (hour, state, count)
                VALUES (date_trunc('hour', coalesce(NEW.finished_at, NEW.updated_at), 'UTC'), NEW.state, 1)
                ON CONFLICT (hour, state) DO UPDATE SET count = c.count + 1;
                RETURN NULL;
            END $$;
            CREATE TRIGGER jobs_outcomes_update AFTER UPDATE OF state ON jobs FOR EACH ROW
                WHEN (NEW.state IN ('succeeded', 'failed') AND OLD.state IS DISTINCT FROM NEW.state)
                EXECUTE FUNCTION qwenbatch_job_outcome_moved();

            -- A batch's jobs in one state, newest first (the jobs page filtered by batch): keyset order straight from the index,
            -- instead of every job of that batch and state sorted per page. It serves whatever (batch_id, state) served.
            CREATE INDEX jobs_batch_state_id ON jobs (batch_id, state, id);
            DROP INDEX jobs_batch_state;

            -- The servers page: which jobs the rescuer took from a server (its history rows name the server that lost the lease).
            CREATE INDEX job_history_rescues ON job_history (id) WHERE reason LIKE 'lease expired%';

            -- The jobs list's text filter (ILIKE '%text%' on key and prompt). The searched text lives in a table of its own,
            -- written when jobs are inserted and never updated: every transition updates jobs, and since state is indexed no
            -- update is HOT, so a trigram index on jobs would take ~70 new GIN entries per transition (measured: 13 % more per
            -- single-row update). Kept in step by statement triggers; a TRUNCATE of jobs empties it too.
            CREATE TABLE job_search (
                job_id bigint PRIMARY KEY,
                key    text NOT NULL,
                prompt text
            );
            INSERT INTO job_search (job_id, key, prompt) SELECT id, key, spec ->> 'prompt' FROM jobs;

            CREATE FUNCTION qwenbatch_job_search() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO job_search (job_id, key, prompt) SELECT id, key, spec ->> 'prompt' FROM new_jobs;
                ELSIF TG_OP = 'DELETE' THEN
                    DELETE FROM job_search s USING old_jobs o WHERE s.job_id = o.id;
                ELSE
                    -- Not TRUNCATE: the statement that truncated jobs may be truncating job_search too, which then cannot be.
                    DELETE FROM job_search;
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER jobs_search_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_jobs
                FOR EACH STATEMENT EXECUTE FUNCTION qwenbatch_job_search();
            CREATE TRIGGER jobs_search_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_jobs
                FOR EACH STATEMENT EXECUTE FUNCTION qwenbatch_job_search();
            CREATE TRIGGER jobs_search_truncate AFTER TRUNCATE ON jobs
                FOR EACH STATEMENT EXECUTE FUNCTION qwenbatch_job_search();

            -- Its trigram GIN indexes, when pg_trgm can be had: it ships with Debian's server packages and is a trusted
            -- extension (a database owner may create it). Without it (no contrib package, no CREATE right on the database) the
            -- filter stays a scan, and this migration must still succeed: the attempt runs in a sub-transaction whose failure
            -- is only a notice.
            DO $trgm$
            BEGIN
                BEGIN
                    CREATE EXTENSION IF NOT EXISTS pg_trgm;
                EXCEPTION WHEN OTHERS THEN
                    RAISE NOTICE 'pg_trgm unavailable (%); the jobs text filter stays unindexed', SQLERRM;
                END;
                IF EXISTS (SELECT 1 FROM pg_opclass WHERE opcname = 'gin_trgm_ops' AND pg_opclass_is_visible(oid)) THEN
                    CREATE INDEX job_search_key_trgm ON job_search USING gin (key gin_trgm_ops);
                    CREATE INDEX job_search_prompt_trgm ON job_search USING gin (prompt gin_trgm_ops);
                END IF;
            END $trgm$;
            """),
        (9, "manifest revisions: a changed row's job supersedes the older job of the same id", """
            -- A manifest id has one current job per batch; a changed row's new job replaces it, the older one keeps its
            -- history and points at its successor. revision numbers a key's jobs, so their output files stay apart.
            ALTER TABLE jobs
                ADD COLUMN revision int NOT NULL DEFAULT 1,
                ADD COLUMN replaces bigint,
                ADD COLUMN superseded_by bigint;

            -- Batches imported before this migration may hold several jobs of one id: the newest is current.
            WITH ranked AS (
                SELECT id, row_number() OVER w AS revision, lead(id) OVER w AS next_id, lag(id) OVER w AS previous_id
                FROM jobs WINDOW w AS (PARTITION BY batch_id, key ORDER BY id)
            )
            UPDATE jobs j SET revision = r.revision, superseded_by = r.next_id, replaces = r.previous_id
            FROM ranked r WHERE j.id = r.id AND (r.next_id IS NOT NULL OR r.previous_id IS NOT NULL);

            -- The rule both stores enforce: one current job per (batch, id). It also refuses an import that names one id twice.
            CREATE UNIQUE INDEX jobs_current_key ON jobs (batch_id, key) WHERE superseded_by IS NULL;
            """),
        (10, "staged imports: a large import's jobs a chunk per row until work needs them", """
            -- A new batch of more than one chunk of jobs is imported as a JSON array of jobs per chunk (PostgresJobStore.Staging):
            -- no per-job index entries, foreign key checks or trigram entries in the import transaction. Claims expand chunks
            -- into jobs in id order as they run short of due jobs; the counters hold staged jobs as pending meanwhile.
            CREATE TABLE job_chunks (
                id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                batch_id bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
                jobs     int NOT NULL,
                due_at   timestamptz NOT NULL,
                payload  bytea NOT NULL
            );
            -- UTF-8 JSON as the importer encoded it (bytes in, bytes stored); written once, read once, a few hundred
            -- kilobytes each: not worth compressing on the import's clock.
            ALTER TABLE job_chunks ALTER COLUMN payload SET STORAGE EXTERNAL;
            CREATE INDEX job_chunks_batch ON job_chunks (batch_id, id);
            """),
        (11, "batch counters and hourly outcomes moved by the statements that move jobs, not by update triggers", """
            -- The update trigger ran on every UPDATE of jobs, claims and heartbeats included, capturing and joining the
            -- statement's old and new rows: 8.7 % of the CPU in the engine benchmark's profile. Every statement that changes a
            -- job's state (or its cost) now moves batch_state_counts (and spend_by_day) itself, in (batch, state) order
            -- (PostgresJobStore.Counters). Inserts and deletes keep their triggers. A worker older than this migration must
            -- not write to a database that has it: its transitions would no longer be counted.
            DROP TRIGGER jobs_counters_update ON jobs;

            -- Succeeded and failed per hour: only transitions (PostgresJobStore.TransitionManyAsync) finish jobs that way, and
            -- they now count them in the same statement; the row trigger cost a function call per finished job.
            DROP TRIGGER jobs_outcomes_update ON jobs;
            DROP FUNCTION qwenbatch_job_outcome_moved();
            """),
        (12, "staged chunks compressed with lz4 where the server has it", """
            -- Uncompressed, a 100k-row import's chunks were 24 MB of TOAST and WAL, all inserted after the last chunk arrived
            -- (a binary COPY keeps its rows until it has 1,000 or ends): the import's last 60-110 ms. lz4 makes them about a
            -- fifth, at less server time than storing them as they are (pglz, the default, would cost more than it saves).
            -- A server built without lz4 (or older than PostgreSQL 14, which has no SET COMPRESSION) keeps them uncompressed.
            DO $$
            BEGIN
                ALTER TABLE job_chunks ALTER COLUMN payload SET COMPRESSION lz4;
                ALTER TABLE job_chunks ALTER COLUMN payload SET STORAGE EXTENDED;
            EXCEPTION WHEN feature_not_supported OR syntax_error THEN
                RAISE NOTICE 'staged chunks stay uncompressed: %', SQLERRM;
            END
            $$;
            """),
    ];
}

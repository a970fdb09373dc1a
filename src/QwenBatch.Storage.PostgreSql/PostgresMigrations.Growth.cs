namespace QwenBatch.Storage.PostgreSql;

/// <summary>Migrations 5 to 12: daily budgets, exactly-once claims, the dashboard's counters and search, revisions, staged imports.</summary>
internal static partial class PostgresMigrations
{
    private static (int Version, string Name, string Sql)[] Growth() =>
    [
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

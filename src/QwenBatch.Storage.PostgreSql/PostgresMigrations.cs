namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// Numbered schema migrations, applied in order, each once, under an advisory lock. A migration, once released, is never
/// edited: a database that has it will not run it again. The list is split over files by era (this file: the first
/// engine's tables; .Growth: budgets to staged imports; .Hangfire: the move onto Hangfire; .Uploads: input images uploaded once).
/// </summary>
internal static partial class PostgresMigrations
{
    /// <summary>Any constant works; it names the lock all QwenBatch processes take while migrating.</summary>
    public const long AdvisoryLockKey = 0x5177_656e_4261_7463;

    /// <summary>Every migration, by version (8 was never released).</summary>
    public static readonly IReadOnlyList<(int Version, string Name, string Sql)> All = [.. Foundation(), .. Growth(), .. Hangfire(), .. Uploads(), .. Webhooks()];

    private static (int Version, string Name, string Sql)[] Foundation() =>
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
    ];
}

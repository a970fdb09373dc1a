using QwenBatch.Schedules;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>
/// Schedule definitions and what each occurrence made (IScheduleStore). Hangfire's recurring jobs decide when an
/// occurrence fires; nothing here claims one.
/// </summary>
public sealed partial class SqliteStore
{
    private const string ScheduleColumns =
        "name, cron, time_zone, manifest, provider, storage_root, budget_micros, catch_up, paused, last_run_at, last_batch, last_error";

    public async Task<bool> AddScheduleAsync(ScheduleDefinition schedule, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await ExecuteAsync(connection, null,
            """
            INSERT INTO schedules (name, cron, time_zone, manifest, provider, storage_root, budget_micros, catch_up, created_at)
            VALUES (@name, @cron, @tz, @manifest, @provider, @root, @budget, @catch_up, @now)
            ON CONFLICT (name) DO NOTHING
            """, ct,
            ("name", schedule.Name), ("cron", schedule.Cron), ("tz", schedule.TimeZone), ("manifest", schedule.Manifest),
            ("provider", schedule.Provider), ("root", schedule.StorageRoot), ("budget", schedule.BudgetUsd is { } b ? Micros(b) : null),
            ("catch_up", schedule.CatchUp.ToDbName()), ("now", NowMs())) == 1;
    }

    public async Task<IReadOnlyList<ScheduleRecord>> GetSchedulesAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {ScheduleColumns} FROM schedules ORDER BY name");
        return await ListAsync(command, r => new ScheduleRecord(
            new ScheduleDefinition(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5),
                Dialect.NullableMoney(r, 6), CatchUpPolicies.Parse(r.GetString(7))),
            Dialect.Bool(r, 8), Dialect.NullableTime(r, 9), r.IsDBNull(10) ? null : r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11)), ct);
    }

    public async Task<bool> RemoveScheduleAsync(string name, CancellationToken ct)
    {
        // Its occurrence records go with it (ON DELETE CASCADE).
        await using var connection = await OpenAsync(ct);
        return await ExecuteAsync(connection, null, "DELETE FROM schedules WHERE name = @name", ct, ("name", name)) == 1;
    }

    public async Task<bool> SetSchedulePausedAsync(string name, bool paused, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await ExecuteAsync(connection, null, "UPDATE schedules SET paused = @paused WHERE name = @name", ct, ("name", name), ("paused", paused ? 1 : 0)) == 1;
    }

    public async Task RecordOccurrenceAsync(ScheduleOutcome outcome, CancellationToken ct)
    {
        // The occurrence's record (the same occurrence again overwrites it), and the schedule's last outcome when no later
        // occurrence is recorded. A schedule removed meanwhile records nothing.
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        (string, object?)[] parameters =
        [
            ("name", outcome.Schedule), ("occurrence", Ms(outcome.Occurrence)), ("at", Ms(outcome.At)), ("batch", outcome.BatchName), ("error", outcome.Error),
        ];
        await ExecuteAsync(connection, tx,
            """
            INSERT INTO schedule_runs (schedule, occurrence, recorded_at, batch_name, error)
            SELECT name, @occurrence, @at, @batch, @error FROM schedules WHERE name = @name
            ON CONFLICT (schedule, occurrence) DO UPDATE SET recorded_at = excluded.recorded_at, batch_name = excluded.batch_name, error = excluded.error
            """, ct, parameters);
        await ExecuteAsync(connection, tx,
            """
            UPDATE schedules SET last_run_at = @at, last_batch = coalesce(@batch, last_batch), last_error = @error
            WHERE name = @name AND NOT EXISTS (SELECT 1 FROM schedule_runs WHERE schedule = @name AND occurrence > @occurrence)
            """, ct, parameters);
        await tx.CommitAsync(ct);
    }

    public async Task<IReadOnlyList<ScheduleOutcome>> GetOccurrencesAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "SELECT schedule, occurrence, recorded_at, batch_name, error FROM schedule_runs WHERE schedule = @name ORDER BY occurrence DESC", ("name", name));
        return await ListAsync(command, r => new ScheduleOutcome(r.GetString(0), Dialect.Time(r, 1), Dialect.Time(r, 2),
            r.IsDBNull(3) ? null : r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4)), ct);
    }
}

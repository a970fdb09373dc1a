using QwenBatch.Schedules;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// Schedule definitions and what each occurrence made (IScheduleStore). Hangfire's recurring jobs decide when an
/// occurrence fires; nothing here claims one.
/// </summary>
public sealed partial class PostgresStore
{
    private const string ScheduleColumns =
        "name, cron, time_zone, manifest, provider, storage_root, budget_usd, catch_up, paused, last_run_at, last_batch, last_error";

    public async Task<bool> AddScheduleAsync(ScheduleDefinition schedule, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO schedules (name, cron, time_zone, manifest, provider, storage_root, budget_usd, catch_up, created_at)
            VALUES (@name, @cron, @tz, @manifest, @provider, @root, @budget, @catch_up, @now)
            ON CONFLICT (name) DO NOTHING
            """);
        var p = command.Parameters;
        p.AddWithValue("name", schedule.Name);
        p.AddWithValue("cron", schedule.Cron);
        p.AddWithValue("tz", schedule.TimeZone);
        p.AddWithValue("manifest", schedule.Manifest);
        p.AddWithValue("provider", schedule.Provider);
        p.AddWithValue("root", schedule.StorageRoot);
        p.Add(Money("budget", schedule.BudgetUsd));
        p.AddWithValue("catch_up", schedule.CatchUp.ToDbName());
        p.AddWithValue("now", _time.GetUtcNow());
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<IReadOnlyList<ScheduleRecord>> GetSchedulesAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {ScheduleColumns} FROM schedules ORDER BY name");
        return await ListAsync(command, r => new ScheduleRecord(
            new ScheduleDefinition(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5),
                Dialect.NullableMoney(r, 6), CatchUpPolicies.Parse(r.GetString(7))),
            r.GetBoolean(8), Dialect.NullableTime(r, 9), r.IsDBNull(10) ? null : r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11)), ct);
    }

    public async Task<bool> RemoveScheduleAsync(string name, CancellationToken ct)
    {
        // Its occurrence records go with it (ON DELETE CASCADE).
        await using var command = _dataSource.CreateCommand("DELETE FROM schedules WHERE name = @name");
        command.Parameters.AddWithValue("name", name);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<bool> SetSchedulePausedAsync(string name, bool paused, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE schedules SET paused = @paused WHERE name = @name");
        command.Parameters.AddWithValue("name", name);
        command.Parameters.AddWithValue("paused", paused);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task RecordOccurrenceAsync(ScheduleOutcome outcome, CancellationToken ct)
    {
        // One statement: the occurrence's record (the same occurrence again, a retried Hangfire job, overwrites it), and the
        // schedule's last outcome when no later occurrence is recorded. A schedule removed meanwhile records nothing.
        await using var command = _dataSource.CreateCommand(
            """
            WITH run AS (
                INSERT INTO schedule_runs AS r (schedule, occurrence, recorded_at, batch_name, error)
                SELECT name, @occurrence, @at, @batch, @error FROM schedules WHERE name = @name
                ON CONFLICT (schedule, occurrence) DO UPDATE SET recorded_at = excluded.recorded_at, batch_name = excluded.batch_name, error = excluded.error
            )
            UPDATE schedules SET last_run_at = @at, last_batch = coalesce(@batch, last_batch), last_error = @error
            WHERE name = @name AND NOT EXISTS (SELECT 1 FROM schedule_runs WHERE schedule = @name AND occurrence > @occurrence)
            """);
        var p = command.Parameters;
        p.AddWithValue("name", outcome.Schedule);
        p.AddWithValue("occurrence", outcome.Occurrence);
        p.AddWithValue("at", outcome.At);
        p.Add(Text("batch", outcome.BatchName));
        p.Add(Text("error", outcome.Error));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<ScheduleOutcome>> GetOccurrencesAsync(string name, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT schedule, occurrence, recorded_at, batch_name, error FROM schedule_runs WHERE schedule = @name ORDER BY occurrence DESC");
        command.Parameters.AddWithValue("name", name);
        return await ListAsync(command, r => new ScheduleOutcome(r.GetString(0), Dialect.Time(r, 1), Dialect.Time(r, 2),
            r.IsDBNull(3) ? null : r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4)), ct);
    }
}

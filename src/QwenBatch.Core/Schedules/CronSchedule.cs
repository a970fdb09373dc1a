using System.Globalization;

namespace QwenBatch.Schedules;

/// <summary>
/// A standard 5-field cron expression (minute hour day-of-month month day-of-week) evaluated in an IANA time zone.
/// Written here rather than taken from Quartz: Quartz wants 6–7 fields with <c>?</c>, and the daylight-saving rules we
/// promise are easier to prove on our own small code. Fields take <c>*</c>, lists, ranges, steps and month/day names;
/// when both day fields are restricted, either matching is enough (as in Vixie cron).
/// </summary>
public sealed class CronSchedule
{
    private static readonly string[] Months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    private static readonly string[] Days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

    // Far enough for any satisfiable expression (Feb 29 on a Monday recurs within 28 years).
    private const int MaxDaysSearched = 366 * 30;

    private readonly bool[] _minutes;
    private readonly bool[] _hours;
    private readonly bool[] _daysOfMonth;
    private readonly bool[] _months;
    private readonly bool[] _daysOfWeek;
    private readonly bool _anyDayOfMonth;
    private readonly bool _anyDayOfWeek;

    private CronSchedule(string expression, TimeZoneInfo zone, bool[][] fields, bool anyDayOfMonth, bool anyDayOfWeek)
    {
        Expression = expression;
        Zone = zone;
        (_minutes, _hours, _daysOfMonth, _months, _daysOfWeek) = (fields[0], fields[1], fields[2], fields[3], fields[4]);
        _anyDayOfMonth = anyDayOfMonth;
        _anyDayOfWeek = anyDayOfWeek;
    }

    public string Expression { get; }

    public TimeZoneInfo Zone { get; }

    /// <summary>Parses the expression and finds the zone; a clear message in <see cref="FormatException"/> otherwise.</summary>
    public static CronSchedule Parse(string expression, string timeZoneId)
    {
        TimeZoneInfo zone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(timeZoneId);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new FormatException($"Unknown time zone '{timeZoneId}'; use an IANA name such as Europe/Berlin or UTC.", ex);
        }

        var parts = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length != 5)
        {
            throw new FormatException($"Cron expression '{expression}' has {parts.Length} field(s); expected 5: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\".");
        }

        var fields = new[]
        {
            ParseField(parts[0], "minute", 0, 59, null),
            ParseField(parts[1], "hour", 0, 23, null),
            ParseField(parts[2], "day-of-month", 1, 31, null),
            ParseField(parts[3], "month", 1, 12, Months),
            ParseField(parts[4], "day-of-week", 0, 7, Days),
        };

        // 7 is Sunday too.
        fields[4][0] |= fields[4][7];
        return new CronSchedule(string.Join(' ', parts), zone, fields, parts[2] == "*", parts[4] == "*");
    }

    /// <summary>
    /// The first occurrence strictly after <paramref name="after"/>, or null when the expression never matches. A local
    /// time skipped by a spring-forward change runs once at the first valid minute after the gap; a local time that occurs
    /// twice on the autumn night runs once, at its first (daylight) instant. The instant is in UTC (offset 0), as the
    /// stores keep instants (PostgreSQL's driver refuses any other offset for timestamptz).
    /// </summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after)
    {
        // Start a day early: the local date of 'after' may be ambiguous, and mapped times are monotonic in local order,
        // so the first candidate later than 'after' is the next occurrence.
        var day = TimeZoneInfo.ConvertTime(after, Zone).Date.AddDays(-1);
        for (var i = 0; i < MaxDaysSearched; i++, day = day.AddDays(1))
        {
            if (!_months[day.Month] || !DayMatches(day))
            {
                continue;
            }

            for (var hour = 0; hour < 24; hour++)
            {
                if (!_hours[hour])
                {
                    continue;
                }

                for (var minute = 0; minute < 60; minute++)
                {
                    if (_minutes[minute] && ToInstant(day.AddHours(hour).AddMinutes(minute)) is var at && at > after)
                    {
                        return at.ToUniversalTime();
                    }
                }
            }
        }

        return null;
    }

    /// <summary>The latest occurrence at or before <paramref name="at"/> within <paramref name="lookBack"/>, if any.</summary>
    public DateTimeOffset? LatestAtOrBefore(DateTimeOffset at, TimeSpan lookBack)
    {
        DateTimeOffset? latest = null;
        var cursor = at - lookBack;
        while (NextAfter(cursor) is { } next && next <= at)
        {
            latest = next;
            cursor = next;
        }

        return latest;
    }

    /// <summary>An occurrence's wall-clock time in the schedule's zone, as used in batch names.</summary>
    public DateTimeOffset Local(DateTimeOffset instant) => TimeZoneInfo.ConvertTime(instant, Zone);

    private bool DayMatches(DateTime day)
    {
        var dom = _daysOfMonth[day.Day];
        var dow = _daysOfWeek[(int)day.DayOfWeek];
        return _anyDayOfMonth || _anyDayOfWeek ? dom && dow : dom || dow;
    }

    private DateTimeOffset ToInstant(DateTime local)
    {
        if (Zone.IsInvalidTime(local))
        {
            // Skipped by a spring-forward change: the first valid minute after the gap.
            var valid = local;
            while (Zone.IsInvalidTime(valid))
            {
                valid = valid.AddMinutes(1);
            }

            return new DateTimeOffset(valid, Zone.GetUtcOffset(valid));
        }

        if (Zone.IsAmbiguousTime(local))
        {
            // Twice on the autumn night: the first instant, which has the larger offset.
            var offset = Zone.GetAmbiguousTimeOffsets(local).Max();
            return new DateTimeOffset(local, offset);
        }

        return new DateTimeOffset(local, Zone.GetUtcOffset(local));
    }

    private static bool[] ParseField(string text, string name, int min, int max, string[]? names)
    {
        var set = new bool[max + 1];
        foreach (var item in text.Split(','))
        {
            var (range, step) = item.Split('/') switch
            {
                [var r] => (r, 1),
                [var r, var s] when int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 => (r, n),
                _ => throw Bad(text, name, min, max),
            };
            int from, to;
            if (range == "*")
            {
                (from, to) = (min, max);
            }
            else if (range.Split('-') is [var a, var b])
            {
                (from, to) = (Value(a, text, name, min, max, names), Value(b, text, name, min, max, names));
            }
            else
            {
                from = Value(range, text, name, min, max, names);
                to = step > 1 ? max : from;
            }

            if (from > to)
            {
                throw Bad(text, name, min, max);
            }

            for (var v = from; v <= to; v += step)
            {
                set[v] = true;
            }
        }

        return set;
    }

    private static int Value(string text, string field, string name, int min, int max, string[]? names)
    {
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        var index = names is null ? -1 : Array.FindIndex(names, n => n.Equals(text, StringComparison.OrdinalIgnoreCase));
        return index >= 0 ? index + (names == Months ? 1 : 0) : throw Bad(field, name, min, max);
    }

    private static FormatException Bad(string text, string name, int min, int max) =>
        new($"Cron {name} field '{text}' is not valid; expected *, a number {min}–{max}, a range a-b, a list a,b or a step */n.");
}

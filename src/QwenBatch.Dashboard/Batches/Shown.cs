using System.Globalization;
using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Dashboard.Batches;

/// <summary>How the batch pages show values: times in UTC, an ETA from the pace so far, shares as percentages.</summary>
internal static class Shown
{
    public static string Time(DateTimeOffset? value) =>
        value is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) : "";

    public static string Seconds(TimeSpan? value) => value is { } v ? v.TotalSeconds.ToString("0.0 's'", CultureInfo.InvariantCulture) : "";

    public static string Percent(int part, int total) => (100.0 * part / Math.Max(1, total)).ToString("0.#", CultureInfo.InvariantCulture) + "%";

    /// <summary>The rest of the batch at its pace since it was created (the pages read no first submit per batch).</summary>
    public static string Eta(BatchRecord batch, BatchProgress p, DateTimeOffset now) =>
        p.IsSettled ? "done" : BatchEta.Format(BatchEta.Estimate(p, batch.CreatedAt, now));

    /// <summary>A text cut to <paramref name="max"/> characters (data URIs run to megabytes).</summary>
    public static string Short(string? text, int max) => text is null ? "" : text.Length <= max ? text : text[..max] + "…";

    /// <summary>Bootstrap's label colour for an edit state.</summary>
    public static string Label(EditState state) => state switch
    {
        EditState.Succeeded => "label-success",
        EditState.Failed => "label-danger",
        EditState.Cancelled or EditState.Held => "label-warning",
        EditState.Pending => "label-default",
        _ => "label-info",
    };
}

using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Retention;

/// <summary>How long finished batches stay in the database; the <c>Retention</c> configuration section.</summary>
public sealed class RetentionOptions
{
    public const string SectionName = "Retention";
    public const int DefaultChunkSize = 1000;

    /// <summary>Workers delete old finished batches; off leaves the database to grow.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>A batch whose every job finished longer ago than this is deleted with its jobs and history.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often each worker looks for expired batches.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan Interval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Jobs deleted per statement, so no statement locks many rows for long.</summary>
    [Range(1, 100_000)]
    public int ChunkSize { get; set; } = DefaultChunkSize;

    /// <summary>Also delete the batch's output folder; by default files on disk are kept.</summary>
    public bool DeleteFiles { get; set; }
}

using System.Globalization;
using Microsoft.AspNetCore.Http;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Pages;

/// <summary>
/// A job's images for thumbnails: outputs only from inside its batch folder, local inputs only from inside
/// <see cref="DashboardOptions.InputRoot"/>. Anything else is 404, so a crafted job row cannot read other server files.
/// </summary>
internal static class JobFiles
{
    private static readonly Dictionary<string, string> Types = new(StringComparer.OrdinalIgnoreCase)
    {
        [".png"] = "image/png", [".jpg"] = "image/jpeg", [".jpeg"] = "image/jpeg", [".webp"] = "image/webp", [".gif"] = "image/gif", [".bmp"] = "image/bmp",
    };

    public static async Task<IResult> OutputAsync(long id, int index, IStore store, CancellationToken ct)
    {
        if (await store.GetEditAsync(id, ct) is not { } job || index < 0 || index >= job.Files.Count || await store.GetBatchAsync(job.BatchId, ct) is not { } batch)
        {
            return Results.NotFound();
        }

        return Serve(batch.StorageDir, Path.Combine(batch.StorageDir, job.Files[index].Path));
    }

    public static async Task<IResult> InputAsync(long id, int index, IStore store, DashboardOptions options, CancellationToken ct)
    {
        if (options.InputRoot is not { Length: > 0 } root || await store.GetEditAsync(id, ct) is not { } job || index < 0 || index >= job.Spec.Images.Count)
        {
            return Results.NotFound();
        }

        return Serve(root, job.Spec.Images[index]);
    }

    private static IResult Serve(string root, string path)
    {
        var full = Path.GetFullPath(path);
        var inside = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root)) + Path.DirectorySeparatorChar;
        if (!full.StartsWith(inside, StringComparison.Ordinal) || !Types.TryGetValue(Path.GetExtension(full), out var type) || !File.Exists(full)
            || new FileInfo(full).LinkTarget is not null || !QwenBatch.Paths.ConfinedPath.IsInside(root, full))
        {
            return Results.NotFound();
        }

        return Results.File(full, type);
    }
}

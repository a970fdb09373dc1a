using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using QwenBatch.Paths;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Batches;

/// <summary>
/// <c>/hangfire/edits/{id}/(input|output)/{index}</c>: an edit's images for thumbnails. Outputs only from inside its
/// batch folder, local inputs only from inside <see cref="DashboardOptions.InputRoot"/> or the uploads folder; anything else is 404, so a
/// crafted edit row cannot read other files of the server.
/// </summary>
internal sealed class EditFiles : IDashboardDispatcher
{
    public const string Route = "/edits/(?<id>\\d+)/(?<kind>input|output)/(?<index>\\d+)";

    private static readonly Dictionary<string, string> Types = new(StringComparer.OrdinalIgnoreCase)
    {
        [".png"] = "image/png", [".jpg"] = "image/jpeg", [".jpeg"] = "image/jpeg", [".webp"] = "image/webp", [".gif"] = "image/gif", [".bmp"] = "image/bmp",
    };

    /// <summary>True for an image the manifest names by a path on this machine (not a URL or a data URI).</summary>
    public static bool IsLocal(string image) => !EditRequestBuilder.IsRemote(image) && !image.StartsWith("data:", StringComparison.OrdinalIgnoreCase);

    public async Task Dispatch(DashboardContext context)
    {
        var http = context.GetHttpContext();
        var store = http.RequestServices.GetRequiredService<IStore>();
        var id = long.Parse(context.UriMatch.Groups["id"].Value, System.Globalization.CultureInfo.InvariantCulture);
        var found = int.TryParse(context.UriMatch.Groups["index"].Value, System.Globalization.CultureInfo.InvariantCulture, out var index)
            && await store.GetEditAsync(id, http.RequestAborted) is { } edit
            ? context.UriMatch.Groups["kind"].Value == "output"
                ? await OutputAsync(edit, index, store, http.RequestAborted)
                : Input(edit, index, http.RequestServices.GetRequiredService<IOptions<DashboardOptions>>().Value)
            : null;
        if (found is not var (path, type))
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        http.Response.ContentType = type;
        http.Response.Headers.CacheControl = "private, max-age=300";
        await http.Response.SendFileAsync(path, http.RequestAborted);
    }

    private static async Task<(string, string)?> OutputAsync(Edits.EditRecord edit, int index, IStore store, CancellationToken ct) =>
        index < edit.Files.Count && await store.GetBatchAsync(edit.BatchId, ct) is { } batch
            ? Confined(batch.StorageDir, Path.Combine(batch.StorageDir, edit.Files[index].Path))
            : null;

    /// <summary>A local input from the input root, or one uploaded with its manifest.</summary>
    private static (string, string)? Input(Edits.EditRecord edit, int index, DashboardOptions options)
    {
        if (index >= edit.Spec.Images.Count || !IsLocal(edit.Spec.Images[index]))
        {
            return null;
        }

        var image = edit.Spec.Images[index];
        var uploads = Path.Combine(Path.GetFullPath(options.StorageRoot), Api.ManifestUpload.UploadsFolder);
        return (options.InputRoot is { Length: > 0 } root ? Confined(root, image) : null) ?? Confined(uploads, image);
    }

    private static (string Path, string Type)? Confined(string root, string path)
    {
        var full = Path.GetFullPath(path);
        return Types.TryGetValue(Path.GetExtension(full), out var type) && File.Exists(full) && new FileInfo(full).LinkTarget is null && ConfinedPath.IsInside(root, full)
            ? (full, type)
            : null;
    }
}

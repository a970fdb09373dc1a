using System.Globalization;
using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Batches;

/// <summary>
/// A batch page's button, posted by Hangfire's script (<c>data-ajax</c>) with the page's antiforgery token, which
/// Hangfire's middleware checks before any dispatcher runs. As for Hangfire's own commands: POST only, nothing on a
/// read-only dashboard, 204 when done, 422 for an unknown batch. The edit state owner makes the change.
/// </summary>
internal sealed class BatchCommand(Func<EditStateChanger, long, Task> command) : IDashboardDispatcher
{
    public static readonly BatchCommand Cancel = new((edits, id) => edits.CancelBatchAsync(id, CancellationToken.None));

    /// <summary>Failed, cancelled and held edits go back to the backlog, where the batch's budget and the fleet's limits apply.</summary>
    public static readonly BatchCommand Retry = new((edits, id) => edits.RequeueBatchAsync(id, [EditState.Failed, EditState.Cancelled, EditState.Held], CancellationToken.None));

    public async Task Dispatch(DashboardContext context)
    {
        var http = context.GetHttpContext();
        if (context.IsReadOnly)
        {
            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            return;
        }

        if (!HttpMethods.IsPost(http.Request.Method))
        {
            http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            return;
        }

        var id = long.Parse(context.UriMatch.Groups["id"].Value, CultureInfo.InvariantCulture);
        if (await http.RequestServices.GetRequiredService<IStore>().GetBatchAsync(id, http.RequestAborted) is null)
        {
            http.Response.StatusCode = StatusCodes.Status422UnprocessableEntity;
            return;
        }

        await command(http.RequestServices.GetRequiredService<EditStateChanger>(), id);
        http.Response.StatusCode = StatusCodes.Status204NoContent;
    }
}

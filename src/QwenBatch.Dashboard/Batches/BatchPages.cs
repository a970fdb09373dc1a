using System.Globalization;
using Hangfire;
using Hangfire.Dashboard;
using QwenBatch.Dashboard.Rendering;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Jobs;

namespace QwenBatch.Dashboard.Batches;

/// <summary>
/// QwenBatch's pages inside Hangfire's dashboard, through its extension points: a "Batches" entry in the navigation,
/// the batch list and a batch's page (<c>/batches</c>, <c>/batches/{id}</c>), their buttons as dashboard commands, an
/// edit's images, and the edit itself on its job's page. Hangfire keeps these registrations in static collections, so
/// they are made once per process.
/// </summary>
internal static class BatchPages
{
    private static int _registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1)
        {
            return;
        }

        NavigationMenu.Items.Add(page => new MenuItem("Batches", page.Url.To("/batches"))
        {
            Active = page.RequestPath.StartsWith("/batches", StringComparison.OrdinalIgnoreCase),
        });

        var routes = DashboardRoutes.Routes;
        routes.AddRazorPage("/batches", _ => new ComponentPage<BatchList>("Batches", page => new Dictionary<string, object?>
        {
            [nameof(BatchList.Root)] = page.Url.To(""),
            [nameof(BatchList.ReadOnly)] = page.IsReadOnly,
        }));
        routes.AddRazorPage("/batches/(?<id>\\d+)", match => new ComponentPage<BatchView>($"Batch {match.Groups["id"].Value}", page => new Dictionary<string, object?>
        {
            [nameof(BatchView.Root)] = page.Url.To(""),
            [nameof(BatchView.Id)] = long.Parse(match.Groups["id"].Value, CultureInfo.InvariantCulture),
            [nameof(BatchView.State)] = StateOf(page.Query("state")),
            [nameof(BatchView.Before)] = long.TryParse(page.Query("before"), NumberStyles.None, CultureInfo.InvariantCulture, out var before) ? before : null,
            [nameof(BatchView.ReadOnly)] = page.IsReadOnly,
        }));
        routes.Add("/batches/(?<id>\\d+)/cancel", BatchCommand.Cancel);
        routes.Add("/batches/(?<id>\\d+)/retry", BatchCommand.Retry);
        routes.Add(EditFiles.Route, new EditFiles());

        GlobalConfiguration.Configuration.UseJobDetailsRenderer(10, EditOfJob);
    }

    /// <summary>On an edit's job page, the edit; nothing on any other job's page.</summary>
    private static NonEscapedString EditOfJob(JobDetailsRendererDto dto)
    {
        if (dto.JobDetails.Job is not { } job || job.Type != typeof(EditJob) || job.Args.Count == 0 || job.Args[0] is not long editId)
        {
            return new NonEscapedString("");
        }

        var services = dto.Page.Context.GetHttpContext().RequestServices;
        return new NonEscapedString(ComponentHtml.RenderAsync<EditPanel>(services, new Dictionary<string, object?>
        {
            [nameof(EditPanel.Root)] = dto.Page.Url.To(""),
            [nameof(EditPanel.EditId)] = editId,
        }).GetAwaiter().GetResult());
    }

    private static EditState? StateOf(string? name) =>
        Enum.GetValues<EditState>().Cast<EditState?>().FirstOrDefault(s => s!.Value.ToDbName() == name);
}

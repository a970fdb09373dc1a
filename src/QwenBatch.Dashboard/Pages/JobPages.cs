using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>Jobs by state (keyset pages of 20, filters, bulk actions on a selection) and one job's page.</summary>
internal static class JobPages
{
    public const int PageSize = 20;

    public static async Task<IResult> ListAsync(string state, HttpContext context, IJobStore store, CancellationToken ct)
    {
        EditState parsed;
        try
        {
            parsed = EditStates.Parse(state);
        }
        catch (FormatException)
        {
            return Results.NotFound();
        }

        var q = context.Request.Query;
        long? batch = long.TryParse(q["batch"], out var b) ? b : null;
        long? before = long.TryParse(q["before"], out var c) ? c : null;
        var query = new EditQuery(parsed, batch, q["provider"].ToString(), q["text"].ToString(), before, PageSize);
        var jobs = await store.QueryJobsAsync(query, ct);

        var body = new StringBuilder("<p class=\"states\">");
        foreach (var s in Enum.GetValues<EditState>())
        {
            body.Append(CultureInfo.InvariantCulture, $"<a href=\"/dashboard/jobs/{s.ToDbName()}{(batch is null ? "" : $"?batch={batch}")}\">{(s == parsed ? $"<b>{s.ToDbName()}</b>" : s.ToDbName())}</a>");
        }

        body.Append(CultureInfo.InvariantCulture, $"</p><form method=\"get\">batch <input name=\"batch\" size=\"6\" value=\"{E(batch)}\"> provider <input name=\"provider\" size=\"10\" value=\"{E(query.Provider)}\"> ")
            .Append(CultureInfo.InvariantCulture, $"id or prompt <input name=\"text\" value=\"{E(query.Text)}\"> <button>Filter</button></form>");
        body.Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"/dashboard/jobs/bulk\">{Token(context)}<input type=\"hidden\" name=\"back\" value=\"{E(context.Request.Path + context.Request.QueryString)}\">");
        body.Append("<table><tr><th><input type=\"checkbox\" onclick=\"document.querySelectorAll('input[name=id]').forEach(c => c.checked = this.checked)\"></th><th>Id</th><th>Batch</th><th>Key</th><th>Provider</th><th>Prompt</th><th>Error</th><th>Updated</th></tr>");
        foreach (var job in jobs)
        {
            body.Append(CultureInfo.InvariantCulture, $"<tr><td><input type=\"checkbox\" name=\"id\" value=\"{job.Id}\"></td><td><a href=\"/dashboard/job/{job.Id}\">{job.Id}</a></td>")
                .Append(CultureInfo.InvariantCulture, $"<td><a href=\"/dashboard/batches/{job.BatchId}\">{job.BatchId}</a></td><td>{E(job.Key)}</td><td>{E(job.Provider)}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{E(Short(job.Spec.Prompt, 80))}</td><td>{E(Short(job.Error, 80))}</td><td>{Time(job.FinishedAt ?? job.SubmittedAt ?? job.CreatedAt)}</td></tr>");
        }

        body.Append("</table><p><button name=\"action\" value=\"requeue\">Requeue selected</button><button name=\"action\" value=\"cancel\">Cancel selected</button>")
            .Append("<button name=\"action\" value=\"delete\">Delete selected</button></p></form>");
        if (jobs.Count == PageSize)
        {
            var next = QueryString.Create(q.Where(kv => kv.Key != "before").Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value.ToString())))
                .Add("before", jobs[^1].Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            body.Append(CultureInfo.InvariantCulture, $"<p><a rel=\"next\" href=\"{E(context.Request.Path + next.ToString())}\">Older →</a></p>");
        }

        return Page($"Jobs: {parsed.ToDbName()}", body.ToString());
    }

    /// <summary>Applies a bulk action to the selected jobs (the form carries the antiforgery token; the filter checked it).</summary>
    public static async Task<IResult> BulkAsync(HttpContext context, IJobStore store, CancellationToken ct)
    {
        var form = await context.Request.ReadFormAsync(ct);
        var ids = form["id"].Select(v => long.TryParse(v, out var id) ? id : 0).Where(id => id > 0).Distinct().ToList();
        var changed = form["action"].ToString() switch
        {
            "requeue" => await store.RequeueJobsAsync(ids, ct),
            "cancel" => await store.CancelJobsAsync(ids, ct),
            "delete" => await store.DeleteJobsAsync(ids, ct),
            _ => -1,
        };
        if (changed < 0)
        {
            return Results.BadRequest("Unknown action; expected requeue, cancel or delete.");
        }

        var back = form["back"].ToString();
        return Results.Redirect(back.StartsWith("/dashboard/", StringComparison.Ordinal) && !back.StartsWith("//", StringComparison.Ordinal) ? back : "/dashboard/jobs/failed");
    }

    public static async Task<IResult> ShowAsync(long id, HttpContext context, IJobStore store, CancellationToken ct)
    {
        if (await store.GetJobAsync(id, ct) is not { } job)
        {
            return Results.NotFound();
        }

        var body = new StringBuilder($"<p>Batch <a href=\"/dashboard/batches/{job.BatchId}\">{job.BatchId}</a> · key <b>{E(job.Key)}</b> · state <b id=\"state\">{job.State.ToDbName()}</b>");
        body.Append(job.CancelRequested ? " · cancel requested" : "").Append("</p><table>");
        Row(body, "Provider", job.Provider);
        Row(body, "Provider request id", job.RequestId);
        Row(body, "Attempt (current step)", job.Attempt);
        Row(body, "Accepted / uncertain submits", $"{job.AcceptedSubmits} / {job.UncertainSubmits}");
        Row(body, "Polls", job.Polls);
        Row(body, "Created", Time(job.CreatedAt));
        Row(body, "Submitted", Time(job.SubmittedAt));
        Row(body, "Started at the provider", Time(job.StartedAt));
        Row(body, "Finished", Time(job.FinishedAt));
        Row(body, "Queue wait", job.StartedAt - job.SubmittedAt);
        Row(body, "Run time", job.FinishedAt - (job.StartedAt ?? job.SubmittedAt));
        Row(body, "Cost (USD)", Usd(job.CostUsd));
        Row(body, "Lease", job.LeaseOwner is null ? "" : $"{job.LeaseOwner} until {Time(job.LeaseExpiresAt)}");
        Row(body, "Error", job.Error);
        body.Append("</table><h2>Request fields (manifest row)</h2><pre>").Append(E(RequestJson(job.Spec))).Append("</pre>");
        body.Append("<h2>Inputs</h2><p>");
        for (var i = 0; i < job.Spec.Images.Count; i++)
        {
            var image = job.Spec.Images[i];
            body.Append(EditRequestBuilder.IsRemote(image) || image.StartsWith("data:", StringComparison.OrdinalIgnoreCase)
                ? $"<span>{E(Short(image, 120))}</span> "
                : $"<a href=\"/dashboard/job/{id}/input/{i}\"><img class=\"thumb\" alt=\"input {i + 1}\" src=\"/dashboard/job/{id}/input/{i}\"></a> ");
        }

        body.Append("</p><h2>Outputs</h2><p>");
        for (var i = 0; i < job.Files.Count; i++)
        {
            body.Append(CultureInfo.InvariantCulture, $"<a href=\"/dashboard/job/{id}/output/{i}\"><img class=\"thumb\" alt=\"output {i + 1}\" src=\"/dashboard/job/{id}/output/{i}\"></a> ");
        }

        body.Append("</p><h2>History</h2><table id=\"history\"><tr><th>At</th><th>From</th><th>To</th><th>Reason</th><th>Server</th></tr>");
        foreach (var h in await store.GetHistoryAsync(id, ct))
        {
            body.Append(CultureInfo.InvariantCulture, $"<tr><td>{Time(h.At)}</td><td>{h.From?.ToDbName()}</td><td>{h.To.ToDbName()}</td><td>{E(h.Reason)}</td><td>{E(h.ServerId)}</td></tr>");
        }

        body.Append("</table>");
        return Page($"Job {job.Id}", body.ToString());
    }

    /// <summary>
    /// The spec as the request fields: prompts and options only. Keys never live in a spec (they come from configuration),
    /// but any field whose name says key, token or secret is still masked, and data URIs are shortened.
    /// </summary>
    private static string RequestJson(EditSpec spec)
    {
        var node = JsonSerializer.SerializeToNode(spec, StoreJsonOptions)!.AsObject();
        node["images"] = new System.Text.Json.Nodes.JsonArray(spec.Images.Select(i => (System.Text.Json.Nodes.JsonNode?)Short(i, 120)).ToArray());
        foreach (var name in node.Select(kv => kv.Key).Where(k => k.Contains("key", StringComparison.OrdinalIgnoreCase) || k.Contains("token", StringComparison.OrdinalIgnoreCase) || k.Contains("secret", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            node[name] = "***";
        }

        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static readonly JsonSerializerOptions StoreJsonOptions = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    private static void Row(StringBuilder body, string label, object? value) => body.Append(CultureInfo.InvariantCulture, $"<tr><th>{E(label)}</th><td>{E(value)}</td></tr>");

    private static string Short(string? text, int max) => text is null ? "" : text.Length <= max ? text : text[..max] + "…";
}

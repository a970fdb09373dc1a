using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>One edit's page: its request, provider progress, thumbnails, history, and a link to its Hangfire job.</summary>
internal static class EditPage
{
    public static async Task<IResult> ShowAsync(long id, HttpContext context, IStore store, CancellationToken ct)
    {
        if (await store.GetEditAsync(id, ct) is not { } job)
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
        body.Append(CultureInfo.InvariantCulture, $"<tr><th>Hangfire job</th><td>{(job.HangfireJob is { } hangfireJob ? $"<a id=\"hangfire-job\" href=\"/hangfire/jobs/details/{E(hangfireJob)}\">{E(hangfireJob)}</a>" : "")}</td></tr>");
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
        return Page($"Edit {job.Id}", body.ToString());
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

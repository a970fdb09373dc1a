using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Storage;
using static QwenBatch.Dashboard.Pages.Html;

namespace QwenBatch.Dashboard.Pages;

/// <summary>The batch list (progress, spend, ETA from the counters) and a batch's page with its actions and reports.</summary>
internal static class BatchPages
{
    public static async Task<IResult> ListAsync(IStore store, TimeProvider time, CancellationToken ct)
    {
        var counts = (await store.GetStateCountsAsync(ct)).ToLookup(c => c.BatchId);
        var now = time.GetUtcNow();
        var body = new StringBuilder("<table><tr><th>Batch</th><th>Provider</th><th>Progress</th><th>Done</th><th>Spent (USD)</th><th>ETA</th><th>Created</th></tr>");
        foreach (var batch in await store.GetBatchesAsync(ct))
        {
            var progress = Progress(batch, counts[batch.Id]);
            body.Append(CultureInfo.InvariantCulture, $"<tr data-batch=\"{batch.Id}\"><td><a href=\"/dashboard/batches/{batch.Id}\">{E(batch.Name)}</a></td><td>{E(batch.Provider)}</td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{Bar(progress)}</td><td class=\"done\">{Done(progress)}/{progress.Total}</td><td>{Usd(progress.SpentUsd)}")
                .Append(batch.BudgetUsd is { } budget ? $" of {Usd(budget)}" : "").Append(CultureInfo.InvariantCulture, $"</td><td>{E(Eta(batch, progress, now))}</td><td>{Time(batch.CreatedAt)}</td></tr>");
        }

        return Page("Batches", body.Append("</table>").ToString());
    }

    public static async Task<IResult> ShowAsync(long id, HttpContext context, IStore store, TimeProvider time, CancellationToken ct)
    {
        if (await store.GetBatchAsync(id, ct) is not { } batch)
        {
            return Results.NotFound();
        }

        var progress = await store.GetProgressAsync(id, ct);
        var body = new StringBuilder($"<p>Provider <b>{E(batch.Provider)}</b> · created {Time(batch.CreatedAt)} · spent ${Usd(progress.SpentUsd)}");
        body.Append(batch.BudgetUsd is { } budget ? $" of ${Usd(budget)}" : "").Append(CultureInfo.InvariantCulture, $" · ETA {E(Eta(batch, progress, time.GetUtcNow()))}</p>");
        body.Append(CultureInfo.InvariantCulture, $"<p id=\"status\" data-done=\"{(progress.IsSettled ? "true" : "false")}\">{Bar(progress)} {Done(progress)}/{progress.Total} settled")
            .Append(progress.IsSettled ? " — <b>finished</b>" : "").Append(batch.CancelRequestedAt is not null ? " — cancel requested" : "").Append("</p>");
        if (batch.Failure is { } failure)
        {
            // A scheduled or continued manifest that was missing or invalid when it fired: the batch has no jobs, only these.
            body.Append("<div id=\"failure\"><p class=\"stale\">Failed: nothing was enqueued. The manifest's errors (also in errors.csv):</p><pre>")
                .Append(E(failure)).Append("</pre></div>");
        }

        body.Append("<table><tr><th>State</th><th>Edits</th></tr>");
        foreach (var state in Enum.GetValues<EditState>())
        {
            body.Append(CultureInfo.InvariantCulture, $"<tr><td>{state.ToDbName()}</td><td data-count=\"{state.ToDbName()}\">{progress.Count(state)}</td></tr>");
        }

        body.Append("</table><h2>Latest edits</h2><table><tr><th>Edit</th><th>Key</th><th>State</th><th>Hangfire job</th><th>Error</th></tr>");
        foreach (var edit in await store.QueryEditsAsync(new EditQuery(BatchId: id, Limit: 20), ct))
        {
            body.Append(CultureInfo.InvariantCulture, $"<tr><td><a href=\"/dashboard/job/{edit.Id}\">{edit.Id}</a></td><td>{E(edit.Key)}</td><td>{edit.State.ToDbName()}</td>")
                .Append(edit.HangfireJob is { } job ? $"<td><a href=\"/hangfire/jobs/details/{E(job)}\">{E(job)}</a></td>" : "<td></td>")
                .Append(CultureInfo.InvariantCulture, $"<td>{E(edit.Error)}</td></tr>");
        }

        body.Append("</table><p>");
        body.Append(Form(context, $"/dashboard/batches/{id}/cancel", "Cancel batch", "cancel"));
        body.Append(Form(context, $"/dashboard/batches/{id}/retry", "Retry failed and cancelled", "retry"));
        body.Append(CultureInfo.InvariantCulture, $"</p><p>Reports: <a href=\"/api/batches/{id}/report.csv\">report.csv</a> · <a href=\"/api/batches/{id}/report.json\">report.json</a> · <a href=\"/api/batches/{id}/report.html\">report.html</a></p>");
        if (!progress.IsSettled)
        {
            body.Append("<script>setTimeout(() => location.reload(), 2000);</script>");
        }

        return Page($"Batch {batch.Name}", body.ToString());
    }

    public static BatchProgress Progress(BatchRecord batch, IEnumerable<BatchStateCount> counts) =>
        new(batch.Id, counts.ToDictionary(c => c.State, c => (int)c.Count), batch.SpentUsd);

    private static int Done(BatchProgress p) => p.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);

    private static string Bar(BatchProgress p)
    {
        double total = Math.Max(1, p.Total);
        var ok = 100 * p.Count(EditState.Succeeded) / total;
        var bad = 100 * (p.Count(EditState.Failed) + p.Count(EditState.Cancelled)) / total;
        var mid = 100 * (p.Count(EditState.Held)) / total;
        return System.FormattableString.Invariant(
            $"<span class=\"bar\" title=\"succeeded / failed or cancelled / held\"><span class=\"ok\" style=\"width:{ok:0.#}%\"></span><span class=\"bad\" style=\"width:{bad:0.#}%\"></span><span class=\"mid\" style=\"width:{mid:0.#}%\"></span></span>");
    }

    /// <summary>Remaining jobs at the batch's average pace so far.</summary>
    private static string Eta(BatchRecord batch, BatchProgress p, DateTimeOffset now)
    {
        var done = Done(p);
        if (p.IsSettled)
        {
            return "done";
        }

        if (done == 0)
        {
            return "—";
        }

        var perJob = (now - batch.CreatedAt) / done;
        var left = perJob * (p.Total - done);
        return left.TotalHours >= 1 ? $"{left.TotalHours:0.0} h" : left.TotalMinutes >= 1 ? $"{left.TotalMinutes:0} min" : $"{left.TotalSeconds:0} s";
    }
}

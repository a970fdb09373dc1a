using System.Globalization;
using QwenBatch.Batches;
using QwenBatch.Dashboard.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Tests.Pages;

/// <summary>The servers page (heartbeats, jobs in hand, rescued jobs) and the overview's history graph, on real PostgreSQL.</summary>
public sealed class ServersAndHistoryPageTests : IAsyncLifetime
{
    private static readonly CancellationToken Ct = CancellationToken.None;
    private readonly DashboardFactory _factory = new();

    private IJobStore Store => _factory.Store;

    public Task InitializeAsync() => _factory.InitializeAsync();

    public Task DisposeAsync() => ((IAsyncLifetime)_factory).DisposeAsync();

    [Fact]
    public async Task Servers_OneStoppedAndOneLive_MarksTheStoppedOneAndLinksItsRescuedJobs()
    {
        var now = TimeProvider.System.GetUtcNow();
        await Store.RegisterServerAsync(new ServerInfo("dead-1", "host-a", 101, 4, now.AddHours(-1), now.AddMinutes(-10)), Ct);
        await Store.RegisterServerAsync(new ServerInfo("live-1", "host-b", 202, 4, now.AddMinutes(-5), now), Ct);
        var import = await ImportAsync("servers", 5);
        // A lease that has already run out, as a crashed server's would have; the rescuer then takes the jobs back.
        var lost = await Store.ClaimAsync(new ClaimRequest("dead-1", 3, TimeSpan.FromMinutes(-1), import.Batch.Id), Ct);
        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(3);
        var held = await Store.ClaimAsync(new ClaimRequest("live-1", 2, TimeSpan.FromMinutes(10), import.Batch.Id), Ct);
        using var client = _factory.CreateClient();

        var all = await client.GetStringAsync("/dashboard/servers");
        var liveOnly = await client.GetStringAsync("/dashboard/servers?server=live-1");

        all.ShouldContain("<tr data-server=\"dead-1\" class=\"stopped\">");
        all.ShouldContain("stopped answering at");
        all.ShouldContain("<tr data-server=\"live-1\" class=\"live\">");
        all.ShouldContain("<td class=\"in-hand\" data-count=\"2\">2");
        all.ShouldContain("<td class=\"rescued\" data-count=\"3\"><a href=\"/dashboard/servers?server=dead-1#rescues\">3 jobs</a>");
        foreach (var job in held)
        {
            all.ShouldContain($"<a href=\"/dashboard/job/{job.Id}\">{job.Id}</a>");
        }

        var rescuedTable = all[all.IndexOf("id=\"rescued\"", StringComparison.Ordinal)..];
        foreach (var job in lost)
        {
            rescuedTable.ShouldContain($"<a href=\"/dashboard/job/{job.Id}\">{job.Id}</a>");
        }

        var liveRescues = liveOnly[liveOnly.IndexOf("id=\"rescued\"", StringComparison.Ordinal)..];
        liveRescues.ShouldNotContain("/dashboard/job/");
    }

    [Fact]
    public async Task Overview_JobsSucceededAndFailed_DrawsThemInTheHourlyAndDailyHistory()
    {
        var import = await ImportAsync("history", 4);
        var claimed = await Store.ClaimAsync(new ClaimRequest("worker", 4, TimeSpan.FromMinutes(5), import.Batch.Id), Ct);
        await FinishAsync(claimed[0], EditState.Succeeded);
        await FinishAsync(claimed[1], EditState.Succeeded);
        await FinishAsync(claimed[2], EditState.Failed);
        using var client = _factory.CreateClient();

        var html = await client.GetStringAsync("/dashboard");

        html.ShouldContain("<svg id=\"history-hour\"");
        html.ShouldContain("data-succeeded=\"2\" data-failed=\"1\">");
        html[html.IndexOf("<svg id=\"history-day\"", StringComparison.Ordinal)..].ShouldContain("data-succeeded=\"2\" data-failed=\"1\">");
        html.ShouldContain("2 succeeded, 1 failed</title>");
    }

    private Task<BatchImport> ImportAsync(string name, int count) =>
        Store.ImportBatchAsync(new NewBatch(name, "/m.csv", "simulator", Path.Combine(_factory.StorageRoot, name)),
            Enumerable.Range(1, count).Select(i => new NewEdit(string.Create(CultureInfo.InvariantCulture, $"row-{i}"), "h", "simulator",
                new EditSpec { Prompt = "p", Images = ["https://example.com/a.png"] })), Ct);

    private async Task FinishAsync(EditRecord job, EditState state) =>
        (await Store.TransitionAsync(new EditTransition(job with { State = state, FinishedAt = TimeProvider.System.GetUtcNow() }, [job.State], "worker", false, null), Ct))
        .ShouldBeTrue();
}

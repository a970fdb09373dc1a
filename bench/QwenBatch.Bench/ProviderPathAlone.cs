using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Providers.Odirouter;

namespace QwenBatch.Bench;

/// <summary>
/// The engine benchmark's reference for what an edit costs without any engine or database: the same provider client and
/// output downloader against the same simulator in this process, <c>workers</c> loops of submit → poll until completed →
/// download, nothing recorded. The simulator makes every output at download (a 512×512 PNG) and shares this process and
/// the machine's two cores with the engine, so this is the most any engine could do here.
/// </summary>
internal static class ProviderPathAlone
{
    public static async Task<Measurement> RunAsync(Uri provider, int edits, int workers, string outputs)
    {
        var account = new ProviderOptions { BaseUrl = provider, ApiKey = "bench-key" };
        using var api = new HttpClient(new SocketsHttpHandler()) { Timeout = account.RequestTimeout };
        using var downloads = new HttpClient(OutputDownloader.CreateHandler()) { Timeout = TimeSpan.FromMinutes(5) };
        var client = new OdirouterClient(api, account, NullLogger<OdirouterClient>.Instance);
        var downloader = new OutputDownloader(downloads);
        var folder = Directory.CreateDirectory(Path.Combine(outputs, $"alone-{Guid.NewGuid():N}")).FullName;
        var next = 0;
        var before = RuntimeCost.Now();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
        {
            for (var i = Interlocked.Increment(ref next); i <= edits; i = Interlocked.Increment(ref next))
            {
                var accepted = await client.SubmitAsync(
                    new EditRequest("White studio background", [$"https://images.example/{i}.png"], null, "512*512", 1, i), CancellationToken.None);
                var result = await client.PollAsync(accepted.RequestId, CancellationToken.None);
                while (result.Status != PollStatus.Completed)
                {
                    if (result.Status is PollStatus.Failed or PollStatus.Cancelled)
                    {
                        throw new InvalidOperationException($"The simulator's task {accepted.RequestId} ended {result.Status}.");
                    }

                    await Task.Delay(10);
                    result = await client.PollAsync(accepted.RequestId, CancellationToken.None);
                }

                var id = i;
                await downloader.DownloadAsync(result.Outputs![0], folder, $"{id}", extension => OutputNames.For($"edit-{id:00000}", 0, 1, extension), CancellationToken.None);
            }
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        return new Measurement(seconds, 0, null, null, RuntimeCost.Now().Since(before));
    }
}

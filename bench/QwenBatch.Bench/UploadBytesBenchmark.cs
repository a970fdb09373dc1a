using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Providers.WaveSpeed;
using QwenBatch.Simulator;
using QwenBatch.Storage.Sqlite;
using QwenBatch.Uploads;

namespace QwenBatch.Bench;

/// <summary>
/// Bytes sent to WaveSpeed: the request bodies (uploads and submits) the real WaveSpeed client sends to the simulator over
/// loopback for two workloads — one banner (samples/images/banner.png) localized into 12 locales, and a batch of N
/// distinct product photos of a given size (random bytes behind a PNG signature, so they do not compress) — with local
/// images as data URIs in every submit (before) and uploaded once and named by URL (after). Deterministic: one round.
/// </summary>
internal static class UploadBytesBenchmark
{
    private static readonly string[] Locales = ["de-DE", "fr-FR", "es-ES", "it-IT", "ja-JP", "pt-BR", "nl-NL", "pl-PL", "sv-SE", "ko-KR", "zh-CN", "tr-TR"];

    public static async Task<int> RunAsync(string[] args)
    {
        var photos = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200;
        var photoKb = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1500;
        var work = Directory.CreateTempSubdirectory("qwenbatch-upload-bytes-").FullName;
        try
        {
            var banner = Path.Combine(BenchProcesses.RepositoryRoot(), "samples", "images", "banner.png");
            var localization = Locales.Select(l => new EditSpec { Prompt = $"Replace the headline 'Summer Sale' for {l}", Images = [banner], Size = "1024*512" }).ToList();
            var catalog = Enumerable.Range(1, photos).Select(i => new EditSpec
            {
                Prompt = "White studio background, keep the product unchanged",
                Images = [Photo(work, i, photoKb * 1024)],
                Size = "1024*1024",
            }).ToList();

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"upload-bytes: request bodies sent to WaveSpeed (the simulator) by the real client; banner {new FileInfo(banner).Length:N0} bytes, photos {photoKb} KB"));
            Console.WriteLine("| workload | edits | before: data URIs | after: uploads | after / before | uploads |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            foreach (var (name, specs) in new[] { ("one banner, 12 locales", localization), ($"{photos} product photos", catalog) })
            {
                var before = await SendAsync(work, specs, uploads: false);
                var after = await SendAsync(work, specs, uploads: true);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {specs.Count} | {before.Bytes:N0} | {after.Bytes:N0} | {(double)after.Bytes / before.Bytes:0.000}× | {after.Uploads} |"));
            }

            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Builds and submits every edit through a fresh simulator and store; returns the request body bytes sent.</summary>
    private static async Task<(long Bytes, long Uploads)> SendAsync(string work, IReadOnlyList<EditSpec> specs, bool uploads)
    {
        await using var simulator = await SimulatorHost.StartAsync(new SimulatorOptions { LatencyMin = TimeSpan.Zero, LatencyMax = TimeSpan.Zero, MaxConcurrent = 100_000 },
            0, TimeProvider.System, NullLoggerFactory.Instance, CancellationToken.None);
        await using var store = new SqliteStore(Path.Combine(work, $"state-{Guid.NewGuid():N}.db"), TimeProvider.System);
        await store.MigrateAsync(CancellationToken.None);
        var counter = new BodyCounter { InnerHandler = new SocketsHttpHandler() };
        using var http = new HttpClient(counter) { Timeout = TimeSpan.FromMinutes(2) };
        var options = new ProviderOptions { BaseUrl = simulator.BaseUrl, ApiKey = "bench-key", UploadInputs = uploads };
        var account = new ProviderAccount(ProviderNames.WaveSpeed, new WaveSpeedClient(http, options, NullLogger<WaveSpeedClient>.Instance), options);
        var requests = new EditRequestBuilder(new InputUploads(store, TimeProvider.System, NullLogger<InputUploads>.Instance));
        foreach (var spec in specs)
        {
            await account.Client.SubmitAsync(await requests.BuildAsync(spec, account, CancellationToken.None), CancellationToken.None);
        }

        return (counter.Bytes, simulator.GetStats().Uploads);
    }

    private static string Photo(string work, int index, int bytes)
    {
        var data = new byte[bytes];
        new Random(index).NextBytes(data);
        ((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]).CopyTo(data);
        var path = Path.Combine(work, $"photo-{index:D4}.png");
        File.WriteAllBytes(path, data);
        return path;
    }

    /// <summary>Adds up the bodies of the requests that pass, as they go on the wire (multipart framing and JSON included).</summary>
    private sealed class BodyCounter : DelegatingHandler
    {
        public long Bytes { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Content is { } content)
            {
                await content.LoadIntoBufferAsync(cancellationToken);
                Bytes += (await content.ReadAsByteArrayAsync(cancellationToken)).LongLength;
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}

using System.CommandLine;
using QwenBatch.Cli.Hosting;

namespace QwenBatch.Cli.Commands;

/// <summary>
/// <c>qwenbatch healthcheck --url …</c>: exit 0 when the URL answers 2xx, 1 otherwise. Container images have no curl, so
/// compose and orchestrators probe /healthz with the tool itself.
/// </summary>
internal static class HealthCheckCommand
{
    public static Command Create()
    {
        var url = new Option<Uri?>("--url") { Description = "The URL to probe, e.g. http://127.0.0.1:5000/healthz." };
        var file = new Option<string?>("--file") { Description = "A worker's Worker:HeartbeatFile: healthy when it was written within --max-age." };
        var maxAge = new Option<double>("--max-age") { Description = "Seconds a heartbeat file may be old.", DefaultValueFactory = _ => 60 };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for an answer.", DefaultValueFactory = _ => 5 };
        var command = new Command("healthcheck", "Probe a URL (the dashboard's /healthz) or a worker's heartbeat file: exit 0 when healthy, 1 otherwise.")
        {
            url, file, maxAge, timeout,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(file) is { } heartbeat)
            {
                var age = File.Exists(heartbeat) ? TimeProvider.System.GetUtcNow() - File.GetLastWriteTimeUtc(heartbeat) : (TimeSpan?)null;
                var healthy = age is { } a && a.TotalSeconds <= parse.GetValue(maxAge);
                Console.WriteLine(age is null ? "unhealthy: no heartbeat file" : $"{(healthy ? "healthy" : "unhealthy")}: last heartbeat {age.Value.TotalSeconds:0} s ago");
                return healthy ? ExitCodes.Success : ExitCodes.UsageOrConfiguration;
            }

            if (parse.GetValue(url) is null)
            {
                await Console.Error.WriteLineAsync("healthcheck needs --url or --file.");
                return ExitCodes.UsageOrConfiguration;
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(parse.GetValue(timeout)) };
            try
            {
                using var response = await http.GetAsync(parse.GetValue(url)!, ct);
                Console.WriteLine($"{(int)response.StatusCode} {response.ReasonPhrase}");
                return response.IsSuccessStatusCode ? ExitCodes.Success : ExitCodes.UsageOrConfiguration;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                await Console.Error.WriteLineAsync($"unhealthy: {ex.Message}");
                return ExitCodes.UsageOrConfiguration;
            }
        });
        return command;
    }
}

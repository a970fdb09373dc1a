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
        var url = new Option<Uri>("--url") { Description = "The URL to probe, e.g. http://127.0.0.1:5000/healthz.", Required = true };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for an answer.", DefaultValueFactory = _ => 5 };
        var command = new Command("healthcheck", "Probe a URL (the dashboard's /healthz): exit 0 when it answers 2xx, 1 otherwise.") { url, timeout };
        command.SetAction(async (parse, ct) =>
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(parse.GetValue(timeout)) };
            try
            {
                using var response = await http.GetAsync(parse.GetValue(url), ct);
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

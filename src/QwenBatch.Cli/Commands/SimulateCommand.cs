using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using QwenBatch.Cli.Hosting;
using QwenBatch.Simulator;
using Serilog;

namespace QwenBatch.Cli.Commands;

/// <summary><c>qwenbatch simulate --port P</c>: serve the provider API on loopback, with outputs and /_sim/stats.</summary>
internal static class SimulateCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "Port to listen on (0 = any free port).", DefaultValueFactory = _ => 8787 };
        var latency = new Option<string?>("--latency") { Description = "Seconds per task: a number (2) or a range (0.3-0.8)." };
        var maxConcurrent = new Option<int?>("--max-concurrent") { Description = "Tasks in progress at once; more wait IN_QUEUE." };
        var failRate = new Option<double?>("--fail-rate") { Description = "Share of tasks that end FAILED (0-1)." };
        var price = new Option<decimal?>("--price") { Description = "USD charged per output image (default 0.02)." };
        var verbose = CommonOptions.Verbose();
        var command = new Command("simulate", "Serve a faithful fake of the provider API on loopback (paths as the real API; GET /_sim/stats).")
        {
            port, latency, maxConcurrent, failRate, price, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            CommonOptions.Overrides(null, null, parse.GetValue(verbose)),
            configuration => ExecuteAsync(configuration, parse.GetValue(port), parse.GetValue(latency), parse.GetValue(maxConcurrent), parse.GetValue(failRate), parse.GetValue(price))));
        return command;
    }

    private static async Task<int> ExecuteAsync(IConfiguration configuration, int port, string? latency, int? maxConcurrent, double? failRate, decimal? price)
    {
        var options = new SimulatorOptions();
        configuration.GetSection("Simulator").Bind(options);
        if (latency is not null)
        {
            (options.LatencyMin, options.LatencyMax) = ParseLatency(latency);
        }

        options.MaxConcurrent = maxConcurrent ?? options.MaxConcurrent;
        options.FailRate = failRate ?? options.FailRate;
        options.PricePerImage = price ?? options.PricePerImage;

        using var shutdown = new ShutdownSignal();
        using var loggers = new Serilog.Extensions.Logging.SerilogLoggerFactory(Log.Logger, dispose: false);
        SimulatorHost host;
        try
        {
            host = await SimulatorHost.StartAsync(options, port, TimeProvider.System, loggers, shutdown.Token);
        }
        catch (ArgumentException ex)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, ex.Message);
        }
        catch (IOException ex)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration, $"Cannot listen on port {port}: {ex.Message}");
        }

        await using (host)
        {
            Console.WriteLine($"Simulator listening on {host.BaseUrl} (odirouter API at /v1/queue/qwen_image_edit_plus, stats at /_sim/stats). Ctrl-C to stop.");
            await host.WaitForShutdownAsync(shutdown.Token);
        }

        return ExitCodes.Success;
    }

    private static (TimeSpan Min, TimeSpan Max) ParseLatency(string text)
    {
        var parts = text.Split('-', 2, StringSplitOptions.TrimEntries);
        if (parts.All(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s >= 0))
        {
            var values = parts.Select(p => TimeSpan.FromSeconds(double.Parse(p, CultureInfo.InvariantCulture))).ToArray();
            if (values[0] <= values[^1])
            {
                return (values[0], values[^1]);
            }
        }

        throw new CliException(ExitCodes.UsageOrConfiguration, $"--latency '{text}' is not valid; expected seconds such as 2 or a range such as 0.3-0.8.");
    }
}

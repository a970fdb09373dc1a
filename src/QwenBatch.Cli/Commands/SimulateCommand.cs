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
        var rateLimit = new Option<int?>("--rate-limit") { Description = "API requests per second per key; beyond it 429 with Retry-After (downloads do not count)." };
        var errorRate = new Option<double?>("--error-rate") { Description = "Share of API requests answered 503 (0-1); a submit answered so is not accepted." };
        var overConcurrency = new Option<string?>("--over-concurrency") { Description = "queue (default: wait IN_QUEUE) or reject (429 on submit beyond --max-concurrent)." }
            .AcceptOnlyFromAmong("queue", "reject");
        var slowRate = new Option<double?>("--slow-rate") { Description = "Share of API requests answered only after Simulator:SlowDelay (default 2 s)." };
        var dropRate = new Option<double?>("--drop-rate") { Description = "Share of API requests whose connection is dropped without an answer." };
        var truncateRate = new Option<double?>("--truncate-rate") { Description = "Share of output downloads cut off half-way." };
        var malformedRate = new Option<double?>("--malformed-rate") { Description = "Share of API requests answered 200 with truncated JSON." };
        var outputPadding = new Option<int?>("--output-padding") { Description = "Bytes of padding added to every PNG output (a chunk decoders skip), e.g. 2097152 for 2 MB outputs." };
        var webhookDelay = new Option<string?>("--webhook-delay") { Description = "Seconds from a task's end to the first attempt of its WaveSpeed webhook: a number (2) or a range (0.5-3)." };
        var webhookDropRate = new Option<double?>("--webhook-drop-rate") { Description = "Share of WaveSpeed webhook events never sent (0-1)." };
        var webhookDuplicateRate = new Option<double?>("--webhook-duplicate-rate") { Description = "Share of WaveSpeed webhook events sent twice, with the same webhook-id (0-1)." };
        var webhookBadSignatureRate = new Option<double?>("--webhook-bad-signature-rate") { Description = "Share of WaveSpeed webhook events with a wrong webhook-signature, on every attempt (0-1)." };
        var webhookSecret = new Option<string?>("--webhook-secret") { Description = "The account's webhook secret (whsec_…) that GET /api/v3/webhook/secret answers and deliveries are signed with; random per start by default." };
        var verbose = CommonOptions.Verbose();
        var command = new Command("simulate", "Serve a faithful fake of the odirouter and WaveSpeed APIs on loopback (paths as the real APIs; GET /_sim/stats).\n"
            + ExitCodes.Help("stopped (Ctrl-C or SIGTERM)", new CommandExit(ExitCodes.UsageOrConfiguration, "the port is taken")))
        {
            port, latency, maxConcurrent, failRate, price, rateLimit, errorRate, overConcurrency, slowRate, dropRate, truncateRate, malformedRate, outputPadding,
            webhookDelay, webhookDropRate, webhookDuplicateRate, webhookBadSignatureRate, webhookSecret, verbose,
        };
        command.SetAction((parse, ct) => Program.RunGuardedAsync(
            WithWebhookSecret(CommonOptions.Overrides(null, null, parse.GetValue(verbose)), parse.GetValue(webhookSecret)),
            configuration =>
            {
                var options = new SimulatorOptions();
                configuration.GetSection("Simulator").Bind(options);
                options.RateLimit = parse.GetValue(rateLimit) ?? options.RateLimit;
                options.ErrorRate = parse.GetValue(errorRate) ?? options.ErrorRate;
                options.RejectOverConcurrency = parse.GetValue(overConcurrency) is { } mode ? mode == "reject" : options.RejectOverConcurrency;
                options.SlowRate = parse.GetValue(slowRate) ?? options.SlowRate;
                options.DropRate = parse.GetValue(dropRate) ?? options.DropRate;
                options.TruncateRate = parse.GetValue(truncateRate) ?? options.TruncateRate;
                options.MalformedRate = parse.GetValue(malformedRate) ?? options.MalformedRate;
                options.OutputPadding = parse.GetValue(outputPadding) ?? options.OutputPadding;
                options.WebhookDropRate = parse.GetValue(webhookDropRate) ?? options.WebhookDropRate;
                options.WebhookDuplicateRate = parse.GetValue(webhookDuplicateRate) ?? options.WebhookDuplicateRate;
                options.WebhookBadSignatureRate = parse.GetValue(webhookBadSignatureRate) ?? options.WebhookBadSignatureRate;
                if (parse.GetValue(webhookDelay) is { } delay)
                {
                    (options.WebhookDelayMin, options.WebhookDelayMax) = ParseSeconds(delay, "--webhook-delay");
                }

                return ExecuteAsync(options, parse.GetValue(port), parse.GetValue(latency), parse.GetValue(maxConcurrent), parse.GetValue(failRate), parse.GetValue(price));
            }));
        return command;
    }

    private static async Task<int> ExecuteAsync(SimulatorOptions options, int port, string? latency, int? maxConcurrent, double? failRate, decimal? price)
    {
        if (latency is not null)
        {
            (options.LatencyMin, options.LatencyMax) = ParseSeconds(latency, "--latency");
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
            Console.WriteLine($"Simulator listening on {host.BaseUrl} (odirouter API at /v1/queue/qwen_image_edit_plus, WaveSpeed API at /api/v3, stats at /_sim/stats). Ctrl-C to stop.");
            await host.WaitForShutdownAsync(shutdown.Token);
        }

        return ExitCodes.Success;
    }

    /// <summary>
    /// The secret reaches the options through the configuration, as Simulator:WebhookSecret from a file or the environment
    /// would, so the log redactor, which reads it there, masks it wherever it might appear.
    /// </summary>
    private static Dictionary<string, string?> WithWebhookSecret(Dictionary<string, string?> overrides, string? secret)
    {
        if (secret is not null)
        {
            overrides["Simulator:WebhookSecret"] = secret;
        }

        return overrides;
    }

    private static (TimeSpan Min, TimeSpan Max) ParseSeconds(string text, string flag)
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

        throw new CliException(ExitCodes.UsageOrConfiguration, $"{flag} '{text}' is not valid; expected seconds such as 2 or a range such as 0.3-0.8.");
    }
}

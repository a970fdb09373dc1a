using System.Text.Json;
using QwenBatch.Cli.Tests.Support;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>Configuration layering and start-up validation, observed through a real process.</summary>
public sealed class ConfigurationTests : IDisposable
{
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task Configuration_EachLayer_OverridesTheOneBelow()
    {
        // Storage:Root is visible from outside: submit records <root>/<batch> on the batch and prints it.
        File.WriteAllText(Path.Combine(_workspace.Root, "appsettings.json"), """{ "Storage": { "Root": "from-json" } }""");
        File.WriteAllText(Path.Combine(_workspace.Root, "appsettings.Staging.json"), """{ "Storage": { "Root": "from-environment-file" } }""");
        var environment = new Dictionary<string, string>();

        (await StorageRootAsync(environment, "json")).ShouldBe("from-json");

        environment["QWENBATCH_ENVIRONMENT"] = "Staging";
        (await StorageRootAsync(environment, "envfile")).ShouldBe("from-environment-file");

        environment["Storage__Root"] = "from-plain-variable";
        (await StorageRootAsync(environment, "plain")).ShouldBe("from-plain-variable");

        environment["QWENBATCH_Storage__Root"] = "from-prefixed-variable";
        (await StorageRootAsync(environment, "prefixed")).ShouldBe("from-prefixed-variable");

        (await StorageRootAsync(environment, "option", "--storage", "from-option")).ShouldBe("from-option");
    }

    [Theory]
    [InlineData("Hangfire__WorkerCount", "0", "Hangfire:WorkerCount", "between 1 and 1000")]
    [InlineData("Hangfire__InvisibilityTimeout", "00:00:05", "Hangfire:InvisibilityTimeout", "between 00:00:15 and 01:00:00")]
    [InlineData("QWENBATCH_Worker__MaxAttempts", "500", "Worker:MaxAttempts", "between 1 and 100")]
    [InlineData("Providers__Odirouter__PricePerImage", "-1", "Providers:Odirouter:PricePerImage", "between 0 and 100")]
    [InlineData("Hangfire__WorkerCount", "many", "Hangfire:WorkerCount", "'many'")]
    public async Task Configuration_OutOfRange_Exits1WithOneLineNamingTheSettingAndRange(string variable, string value, string setting, string range)
    {
        var result = await CliProcess.RunAsync(_workspace.Root, new Dictionary<string, string> { [variable] = value }, "run", "samples/products.csv");

        result.ExitCode.ShouldBe(1, result.Output);
        var line = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldHaveSingleItem();
        line.ShouldStartWith("Invalid configuration:");
        line.ShouldContain(setting);
        line.ShouldContain(range);
        Directory.Exists(_workspace.BatchDir("products")).ShouldBeFalse();
    }

    [Fact]
    public async Task Serve_AddressAlreadyInUse_Exits1WithOneLineAndNoStackTrace()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var urls = $"http://127.0.0.1:{((System.Net.IPEndPoint)taken.LocalEndpoint).Port}";

        var result = await CliProcess.RunAsync(_workspace.Root, new Dictionary<string, string>(), "serve", "--urls", urls);

        result.ExitCode.ShouldBe(1, result.Output);
        result.Stderr.ShouldContain($"Cannot listen on {urls}: the address is already in use");
        result.Output.ShouldNotContain("   at ");
        result.Output.ShouldNotContain("Exception");
    }

    private async Task<string> StorageRootAsync(Dictionary<string, string> environment, string name, params string[] options)
    {
        var result = await CliProcess.RunAsync(_workspace.Root, environment, ["submit", "samples/products.csv", "--json", "--name", name, .. options]);
        result.ExitCode.ShouldBe(0, result.Output);
        var storage = JsonDocument.Parse(result.Stdout).RootElement.GetProperty("storage").GetString()!;
        Path.GetFileName(storage).ShouldBe(name);
        return Path.GetRelativePath(_workspace.Root, Path.GetDirectoryName(storage)!);
    }
}

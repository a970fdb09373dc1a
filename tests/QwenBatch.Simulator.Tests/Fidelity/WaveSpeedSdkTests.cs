using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.Fidelity;

/// <summary>
/// The official WaveSpeed JS SDK (npm <c>wavespeed</c>, installed by scripts/test.sh into tests/sdk) runs an edit against
/// the simulator with nothing changed but its baseUrl, and downloads a valid image; its upload call stores a file the
/// simulator serves back and an edit may name. Fails when node or the package is
/// missing: fidelity is not optional.
/// </summary>
public sealed class WaveSpeedSdkTests
{
    [Theory]
    [InlineData("jpeg")]
    [InlineData("png")]
    [InlineData("webp")]
    public async Task Run_OfficialSdkAgainstSimulator_CompletesAndDownloadsAValidImage(string format)
    {
        var sdk = Path.Combine(RepositoryRoot(), "tests", "sdk");
        File.Exists(Path.Combine(sdk, "node_modules", "wavespeed", "package.json"))
            .ShouldBeTrue("the wavespeed npm package is missing: run 'npm ci' in tests/sdk (scripts/test.sh does)");
        await using var scope = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(latencyMs: 150));
        var output = Path.Combine(Path.GetTempPath(), $"qwenbatch-sdk-{Guid.NewGuid():N}.{format}");
        try
        {
            var (exitCode, stdout, stderr) = await RunNodeAsync(sdk, "wavespeed-edit.mjs", scope.Host.BaseUrl.AbsoluteUri.TrimEnd('/'), output, format);

            exitCode.ShouldBe(0, stdout + stderr);
            using var summary = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
            summary.RootElement.GetProperty("outputs").GetInt32().ShouldBe(1);
            var bytes = await File.ReadAllBytesAsync(output);
            Dimensions(bytes, format).ShouldBe((512, 384));
            var stats = scope.Host.GetStats();
            stats.Submits.ShouldBe(1);
            stats.ChargedImages.ShouldBe(1);
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public async Task Upload_OfficialSdkAgainstSimulator_StoresTheFileServesItBackAndAnEditNamingItRuns()
    {
        var sdk = Path.Combine(RepositoryRoot(), "tests", "sdk");
        File.Exists(Path.Combine(sdk, "node_modules", "wavespeed", "package.json"))
            .ShouldBeTrue("the wavespeed npm package is missing: run 'npm ci' in tests/sdk (scripts/test.sh does)");
        await using var scope = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(latencyMs: 50));
        var image = Path.Combine(RepositoryRoot(), "samples", "images", "banner.png");

        var (exitCode, stdout, stderr) = await RunNodeAsync(sdk, "wavespeed-upload.mjs", scope.Host.BaseUrl.AbsoluteUri.TrimEnd('/'), image);

        exitCode.ShouldBe(0, stdout + stderr);
        using var summary = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        summary.RootElement.GetProperty("bytes").GetInt64().ShouldBe(new FileInfo(image).Length);
        summary.RootElement.GetProperty("url").GetString()!.ShouldStartWith(scope.Host.BaseUrl.AbsoluteUri + "_sim/uploads/");
        summary.RootElement.GetProperty("outputs").GetInt32().ShouldBe(1);
        var stats = scope.Host.GetStats();
        stats.Uploads.ShouldBe(1);
        stats.Submits.ShouldBe(1);
    }

    /// <summary>Width and height as the file's own header states them.</summary>
    private static (int Width, int Height) Dimensions(byte[] bytes, string format)
    {
        switch (format)
        {
            case "png":
                bytes.AsSpan(0, 8).ToArray().ShouldBe(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
                return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
            case "jpeg":
                var (width, height, _) = JpegInspector.Read(bytes);
                return (width, height);
            default:
                return WebpInspector.Read(bytes);
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunNodeAsync(string directory, params string[] args)
    {
        var info = new ProcessStartInfo("node") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
            info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("node did not start; install nodejs (scripts/test.sh does)");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "QwenBatch.sln")))
                return dir.FullName;
        }

        throw new DirectoryNotFoundException("QwenBatch.sln not found above the test folder.");
    }
}

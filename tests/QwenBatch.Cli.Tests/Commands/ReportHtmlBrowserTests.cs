using Microsoft.Playwright;
using QwenBatch.Cli.Tests.Support;
using Xunit.Abstractions;

namespace QwenBatch.Cli.Tests.Commands;

/// <summary>report.html opened from the batch folder in real headless Chromium (Debian's), every page of the contact sheet.</summary>
public sealed class ReportHtmlBrowserTests(ITestOutputHelper output) : IDisposable
{
    private const int Jobs = 150;
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task ReportHtml_OpenedInChromium_EveryImageOnEveryPageLoads()
    {
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.1-0.2", "--fail-rate", "0.1");
        ReportFiles.WriteManifest(_workspace.Root, "sheet", Jobs);
        var run = await CliProcess.RunAsync(_workspace.Root, new Dictionary<string, string>
        {
            ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
            ["ODIROUTER_API_KEY"] = "odr-html-test-key",
            ["Worker__FirstPollDelay"] = "00:00:00.200",
            ["Worker__MaxPollInterval"] = "00:00:01",
            ["Worker__MaxProviderResubmits"] = "0",
        }, "run", "samples/sheet.csv", "--provider", "odirouter");
        run.ExitCode.ShouldBeOneOf(0, 3);
        var folder = _workspace.BatchDir("sheet");
        var expectedImages = ReportFiles.ReadCsv(Path.Combine(folder, "report.csv")).Sum(r => 1 + int.Parse(r["images"], System.Globalization.CultureInfo.InvariantCulture));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        var page = await browser.NewPageAsync();
        var external = new List<string>();
        page.Request += (_, request) =>
        {
            if (!request.Url.StartsWith("file://", StringComparison.Ordinal))
            {
                external.Add(request.Url);
            }
        };
        await page.GotoAsync(new Uri(Path.Combine(folder, "report.html")).AbsoluteUri);

        var pages = await page.EvaluateAsync<int>("window.qwenbatch.pages()");
        pages.ShouldBe(2);
        var seen = 0;
        for (var p = 0; p < pages; p++)
        {
            await page.EvaluateAsync("p => window.qwenbatch.show(p)", p);

            // Lazy images load when scrolled near; each is brought into view and awaited.
            var widths = await page.EvaluateAsync<int[]>("""
                async () => {
                  const widths = [];
                  for (const img of document.querySelectorAll('#sheet img')) {
                    img.scrollIntoView();
                    if (!img.complete) await new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); });
                    widths.push(img.naturalWidth);
                  }
                  return widths;
                }
                """);
            widths.ShouldAllBe(w => w > 0);
            seen += widths.Length;
            if (p == 0)
            {
                var screenshot = Path.Combine(AppContext.BaseDirectory, "screenshots", "report-html.png");
                Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
                await page.EvaluateAsync("window.scrollTo(0, 0)");
                await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot });
                output.WriteLine($"Screenshot: {screenshot}");
            }
        }

        seen.ShouldBe(expectedImages);
        (await page.Locator("#sheet b").CountAsync()).ShouldBe(0);
        ((await page.Locator("#sheet .prompt").First.TextContentAsync()) ?? "").ShouldContain("<b>");
        ((await page.Locator("#totals").TextContentAsync()) ?? "").ShouldMatch(@"Cost\s*\$\d+\.\d\d", "money with two decimals");
        (await page.EvaluateAsync<string[]>("() => [...document.querySelectorAll('#sheet .meta span:not(.status)')].map(s => s.textContent)"))
            .ShouldAllBe(cost => System.Text.RegularExpressions.Regex.IsMatch(cost, @"^\$\d+\.\d\d\d?\d?$"));
        external.ShouldBeEmpty();
    }
}

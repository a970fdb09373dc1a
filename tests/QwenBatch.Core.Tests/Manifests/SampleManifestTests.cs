using QwenBatch.Manifests;

namespace QwenBatch.Core.Tests.Manifests;

public sealed class SampleManifestTests
{
    private static readonly string Samples = Path.Combine(FindRoot(), "samples");

    [Fact]
    public void Read_ProductsCsv_IsValidWithFourJobs()
    {
        var manifest = ManifestReader.Read(Path.Combine(Samples, "products.csv"));

        manifest.Errors.ShouldBeEmpty();
        manifest.Jobs.Select(j => j.Key).ShouldBe(["mug-red", "sneaker-blue", "lamp-yellow", "backpack-green"]);
    }

    [Fact]
    public void Read_LocalizationJson_FansTheBannerOutToEveryLocale()
    {
        var manifest = ManifestReader.Read(Path.Combine(Samples, "localization.json"));

        manifest.Errors.ShouldBeEmpty();
        manifest.Warnings.ShouldBeEmpty();
        manifest.Name.ShouldBe("summer-banner");
        manifest.Jobs.Select(j => j.Key).ShouldBe(["banner-de-DE", "banner-fr-FR", "banner-es-ES", "banner-it-IT", "banner-ja-JP"]);
        manifest.Jobs[0].Spec.Prompt.ShouldBe("Replace the headline 'Summer Sale' with 'Sommerschlussverkauf' and keep the same font and size");
        manifest.Jobs.ShouldAllBe(j => j.Spec.Images.Single().EndsWith("banner.png", StringComparison.Ordinal) && j.Spec.Size == "1024*512");
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QwenBatch.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("QwenBatch.sln not found above the test folder.");
    }
}

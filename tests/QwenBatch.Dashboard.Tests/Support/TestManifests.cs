using System.Net.Http.Headers;

namespace QwenBatch.Dashboard.Tests.Support;

/// <summary>Manifests to upload, and the repository's sample images.</summary>
public static class TestManifests
{
    /// <summary>The repository's samples folder (found from the test's output folder).</summary>
    public static string Samples
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QwenBatch.sln")))
            {
                dir = dir.Parent;
            }

            return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("QwenBatch.sln not found above the test output."), "samples");
        }
    }

    /// <summary>A CSV of <paramref name="count"/> jobs using a sample image by a path relative to the input root.</summary>
    public static string Csv(int count, string image = "images/mug.png") =>
        "id,prompt,images\n" + string.Concat(Enumerable.Range(1, count).Select(i => $"row-{i:D3},\"White studio background, keep product {i} unchanged\",{image}\n"));

    public static MultipartFormDataContent Upload(string content, string fileName = "products.csv")
    {
        var file = new StringContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        return new MultipartFormDataContent { { file, "manifest", fileName } };
    }
}

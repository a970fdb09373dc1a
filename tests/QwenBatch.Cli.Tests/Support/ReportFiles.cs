using System.Globalization;
using System.Text;
using CsvHelper;

namespace QwenBatch.Cli.Tests.Support;

/// <summary>Reads report CSVs back as a user's tool would: header names to cells.</summary>
internal static class ReportFiles
{
    public static List<Dictionary<string, string>> ReadCsv(string path)
    {
        using var csv = CsvReader.FromFile(path, new CsvReaderOptions(), FileOptions.SequentialScan);
        csv.ReadHeader();
        var header = csv.Headers!.ToList();
        var rows = new List<Dictionary<string, string>>();
        while (csv.Read())
        {
            rows.Add(header.Select((name, i) => (name, value: csv.GetString(i))).ToDictionary(c => c.name, c => c.value, StringComparer.Ordinal));
        }

        return rows;
    }

    public static decimal Money(string cell) => decimal.Parse(cell, NumberStyles.Number, CultureInfo.InvariantCulture);

    /// <summary>A manifest of <paramref name="jobs"/> rows over the sample images; row 3 asks for two outputs.</summary>
    public static string WriteManifest(string root, string name, int jobs, Func<int, string>? sku = null)
    {
        var images = new[] { "images/mug.png", "images/sneaker.png", "images/lamp.png", "images/backpack.png" };
        var text = new StringBuilder("id,prompt,images,n,sku\n");
        for (var i = 1; i <= jobs; i++)
        {
            var id = string.Create(CultureInfo.InvariantCulture, $"job-{i:000}");
            var n = i == 3 ? 2 : 1;
            text.Append(CultureInfo.InvariantCulture, $"{id},\"White background <b>{i}</b>, keep the product\",{images[i % images.Length]},{n},\"{(sku?.Invoke(i) ?? $"SKU-{i}").Replace("\"", "\"\"", StringComparison.Ordinal)}\"\n");
        }

        var path = Path.Combine(root, "samples", name + ".csv");
        File.WriteAllText(path, text.ToString());
        return path;
    }
}

using System.Text;
using QwenBatch.Manifests;

namespace QwenBatch.Core.Tests.Manifests;

/// <summary>Random bytes and mutated manifests never crash the reader: a clear error or a valid result.</summary>
public sealed class ManifestReaderFuzzTests : IDisposable
{
    private const int Cases = 3000;
    private readonly ManifestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static readonly string[] Seeds =
    [
        "id,prompt,images,n,seed,size,watermark\na,\"p, with comma\",a.png,2,5,1024*1024,yes\nb,q,a.png|a.png,1,,512x512,no\n",
        "{\"name\": \"n\", \"defaults\": {\"images\": [\"a.png\"]}, \"jobs\": [{\"id\": \"{l}\", \"prompt\": \"p {l}\", \"matrix\": [{\"l\": \"de\"}, {\"l\": \"fr\"}]}]}",
        "{\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"], \"n\": 2}\n{\"id\": \"b\", \"prompt\": \"q\", \"images\": [\"data:image/png;base64,iVBORw0KGgo=\"]}\n",
    ];

    private static readonly string[] Extensions = [".csv", ".json", ".jsonl", ".txt"];

    [Fact]
    public void Read_RandomBytesAndMutatedManifests_NeverThrow()
    {
        var random = new Random(20240611);
        var outcomes = new int[2];
        for (var i = 0; i < Cases; i++)
        {
            var bytes = i % 4 == 0 ? RandomBytes(random) : Mutate(random, Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)]));
            var path = Path.Combine(_folder.Dir, $"fuzz{Extensions[random.Next(Extensions.Length)]}");
            File.WriteAllBytes(path, bytes);

            Manifest manifest;
            try
            {
                manifest = ManifestReader.Read(path);
            }
            catch (Exception ex)
            {
                throw new ShouldAssertException($"case {i} ({Convert.ToBase64String(bytes)}) threw {ex}");
            }

            (manifest.IsValid || manifest.Errors.All(e => e.Message.Length > 0)).ShouldBeTrue();
            outcomes[manifest.IsValid ? 1 : 0]++;
        }

        outcomes[0].ShouldBeGreaterThan(Cases / 4);
        outcomes[1].ShouldBeGreaterThan(0);
    }

    private static readonly string[] JsonSeeds =
    [
        "{\"jobs\": [\n {\"id\": \"a\", \"prompt\": \"p\"},\n {\"id\": \"b\", \"prompt\": \"q\", \"n\": 2}\n],\n\"defaults\": {\"images\": [\"a.png\"]}, \"name\": \"late\"}",
        "[\n {\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]}, // a comment\n {\"id\": \"{l}\", \"prompt\": \"p {l}\", \"images\": [\"a.png\"], \"matrix\": [{\"l\": \"de\"}, {\"l\": \"fr\"}]},\n]",
        Seeds[1],
    ];

    /// <summary>
    /// The streamed JSON reader on mutated manifests: it never throws, and a 16-byte read buffer (every token crossing a
    /// refill) gives exactly what the default buffer gives — the same jobs on the same lines, the same errors.
    /// </summary>
    [Fact]
    public void Read_MutatedJson_NeverThrowsAndDoesNotDependOnTheReadBuffer()
    {
        var random = new Random(20261121);
        var outcomes = new int[2];
        for (var i = 0; i < Cases / 3; i++)
        {
            var bytes = Mutate(random, Encoding.UTF8.GetBytes(JsonSeeds[random.Next(JsonSeeds.Length)]));
            var path = Path.Combine(_folder.Dir, "fuzz.json");
            File.WriteAllBytes(path, bytes);

            Manifest whole, tiny;
            try
            {
                whole = ManifestReader.Read(path);
                tiny = ManifestReader.Read(path, new ManifestOptions { JsonBufferSize = 16 });
            }
            catch (Exception ex)
            {
                throw new ShouldAssertException($"case {i} ({Convert.ToBase64String(bytes)}) threw {ex}");
            }

            var context = $"case {i}: {Encoding.UTF8.GetString(bytes)}";
            tiny.Jobs.Select(j => (j.Line, j.Key, j.Spec.Prompt, j.Spec.N)).ShouldBe(whole.Jobs.Select(j => (j.Line, j.Key, j.Spec.Prompt, j.Spec.N)), context);
            // A syntax error quotes the bytes it stopped on, as many as the reader had at hand; the rest is the same.
            tiny.Errors.Select(Comparable).ShouldBe(whole.Errors.Select(Comparable), context);
            tiny.Name.ShouldBe(whole.Name, context);
            (whole.IsValid || whole.Errors.All(e => e.Message.Length > 0 && e.Line >= 0)).ShouldBeTrue();
            outcomes[whole.IsValid ? 1 : 0]++;
        }

        outcomes[0].ShouldBeGreaterThan(Cases / 12);
        outcomes[1].ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Read_DeeplyNestedJson_IsAClearError()
    {
        var manifest = _folder.Read("deep.json", new string('[', 5000) + new string(']', 5000));

        manifest.Errors.ShouldHaveSingleItem().Message.ShouldStartWith("the file is not valid JSON here");
    }

    [Fact]
    public void Read_HugeCsvField_IsAClearError()
    {
        var manifest = _folder.Read("huge.csv", "id,prompt,images\na,\"" + new string('x', 3 * 1024 * 1024) + "\",a.png\n");

        manifest.Errors.ShouldHaveSingleItem().Message.ShouldStartWith("the file cannot be read as CSV from here");
    }

    [Fact]
    public void Read_Latin1Csv_SaysToSaveAsUtf8()
    {
        var path = Path.Combine(_folder.Dir, "latin1.csv");
        File.WriteAllBytes(path, Encoding.Latin1.GetBytes("id,prompt,images\na,Caf\u00e9 au lait,a.png\n"));

        var manifest = ManifestReader.Read(path);

        manifest.Errors.ShouldHaveSingleItem().ShouldBe(new ManifestError("latin1.csv", 2, "prompt", "is not UTF-8 text; save the manifest as UTF-8 (CSV UTF-8 in spreadsheet programs)"));
    }

    private static (int Line, string? Field, string Message) Comparable(ManifestError error) =>
        (error.Line, error.Field, error.Message.Split('\'')[0]);

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 600)];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[] seed)
    {
        var bytes = new List<byte>(seed);
        var edits = random.Next(1, 6);
        for (var e = 0; e < edits && bytes.Count > 0; e++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(4))
            {
                case 0:
                    bytes.RemoveAt(at);
                    break;
                case 1:
                    bytes.Insert(at, "\",{}[]|\n\r\\:*x-1 \u00e9"u8[random.Next(16)]);
                    break;
                case 2:
                    bytes[at] = (byte)random.Next(256);
                    break;
                default:
                    bytes.InsertRange(at, bytes.GetRange(at, Math.Min(bytes.Count - at, random.Next(1, 40))));
                    break;
            }
        }

        return [.. bytes];
    }
}

using QwenBatch.Manifests;

namespace QwenBatch.Core.Tests.Manifests;

public sealed class ManifestReaderCsvTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qwenbatch-manifest-").FullName;

    public ManifestReaderCsvTests()
    {
        File.WriteAllBytes(Path.Combine(_dir, "a.png"), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Read_ValidRows_ResolvesImagesAndKeepsVariables()
    {
        var manifest = Read("id,Prompt,images,n,sku\r\nj1,\"white background, keep it\",a.png|https://x.example/b.jpg,2,S-1\r\n");

        manifest.IsValid.ShouldBeTrue();
        var job = manifest.Jobs.ShouldHaveSingleItem();
        job.Key.ShouldBe("j1");
        job.Line.ShouldBe(2);
        job.Spec.Prompt.ShouldBe("white background, keep it");
        job.Spec.Images.ShouldBe([Path.Combine(_dir, "a.png"), "https://x.example/b.jpg"]);
        job.Spec.N.ShouldBe(2);
        job.Spec.Variables.ShouldBe(new Dictionary<string, string> { ["sku"] = "S-1" });
    }

    [Fact]
    public void Read_QuotedNewlineInPrompt_ReportsLaterErrorsOnTheirOwnLine()
    {
        var manifest = Read("id,prompt,images\nj1,\"two\nlines\",a.png\nj2,,a.png\n");

        manifest.Errors.ShouldHaveSingleItem().ShouldBe(new ManifestError("m.csv", 4, "prompt", "is empty; expected the edit instruction"));
    }

    [Fact]
    public void Read_SeveralBadRows_ReportsEveryErrorWithLineAndFieldAndEnqueuesNothing()
    {
        var manifest = Read("id,prompt,images,n,seed\nok,p,a.png,1,\nbad-n,p,a.png,7,\nmissing,p,nope.png,1,\nbad-seed,p,a.png,1,-5\nok,p,a.png,1,\n");

        manifest.IsValid.ShouldBeFalse();
        manifest.Jobs.Select(j => j.Line).ShouldBe([2]);
        manifest.Skipped.Select(j => j.Line).ShouldBe([3, 4, 5, 6]);
        manifest.Errors.Select(e => (e.Line, e.Field)).ShouldBe([(3, "n"), (4, "images"), (5, "seed"), (6, "id")]);
        manifest.Errors[0].ToString().ShouldBe("m.csv:3: n: '7' is not allowed; expected a whole number from 1 to 6");
        manifest.Errors[3].Message.ShouldBe("'ok' is already used on line 2; ids must be unique");
    }

    [Fact]
    public void Read_TooManyImages_IsAnError()
    {
        var manifest = Read("id,prompt,images\nj,p,a.png|a.png|a.png|a.png\n");

        manifest.Errors.ShouldHaveSingleItem().Message.ShouldBe("has 4 image(s); expected 1 to 3, separated by '|'");
    }

    [Fact]
    public void Read_MissingColumns_NamesThemOnTheHeaderLine()
    {
        var manifest = Read("id,text\nj,p\n");

        manifest.Errors.Select(e => (e.Line, e.Field)).ShouldBe([(1, "prompt"), (1, "images")]);
    }

    [Fact]
    public void Read_MissingFile_IsAClearError()
    {
        var manifest = ManifestReader.Read(Path.Combine(_dir, "absent.csv"));

        manifest.Errors.ShouldHaveSingleItem().Message.ShouldStartWith("the manifest file");
    }

    [Fact]
    public void Read_ByteOrderMarkAndNoIdColumn_UsesLineBasedIds()
    {
        var manifest = Read("\uFEFFprompt,image\np,a.png\n");

        manifest.IsValid.ShouldBeTrue();
        manifest.Jobs.ShouldHaveSingleItem().Key.ShouldBe("row-2");
    }

    private Manifest Read(string text)
    {
        var path = Path.Combine(_dir, "m.csv");
        File.WriteAllText(path, text);
        return ManifestReader.Read(path);
    }
}

using QwenBatch.Outputs;

namespace QwenBatch.Core.Tests.Outputs;

public sealed class OutputNamesTests
{
    [Theory]
    [InlineData("mug-red", 0, 1, "mug-red.png")]
    [InlineData("lamp", 1, 2, "lamp-2.png")]
    [InlineData("../../etc/passwd", 0, 1, "_.._etc_passwd.png")]
    [InlineData("/abs/path", 0, 1, "_abs_path.png")]
    [InlineData("..", 0, 1, "_.png")]
    [InlineData("C:\\Windows\\system32", 0, 1, "C__Windows_system32.png")]
    [InlineData("CON", 0, 1, "_CON.png")]
    [InlineData("nul", 0, 1, "_nul.png")]
    [InlineData("", 0, 1, "_.png")]
    public void For_AnyKey_StaysInsideTheBatchFolder(string key, int index, int count, string expected)
    {
        var name = OutputNames.For(key, index, count, "png");

        name.ShouldBe(expected);
        Path.GetFileName(name).ShouldBe(name);
    }

    [Theory]
    [InlineData("{sku}-{locale}.{ext}", 0, 1, "A1-de.png")]
    [InlineData("{locale}/{id}.{ext}", 0, 1, "de/job.png")]
    [InlineData("{id}", 0, 1, "job.png")]
    [InlineData("{id}.{ext}", 2, 3, "job-3.png")]
    [InlineData("{id}_{k}.{ext}", 1, 2, "job_2.png")]
    [InlineData("{sku}", 1, 2, "A1-2.png")]
    [InlineData("{unknown}.{ext}", 0, 1, "_.png")]
    public void For_Template_FillsIdKExtAndVariables(string template, int index, int count, string expected)
    {
        var variables = new Dictionary<string, string> { ["sku"] = "A1", ["locale"] = "de" };

        OutputNames.For(template, "job", index, count, "png", variables).ShouldBe(expected);
    }

    [Theory]
    [InlineData(null, 0, 1, 1, "job.png")]
    [InlineData(null, 0, 1, 2, "job-r2.png")]
    [InlineData(null, 1, 2, 3, "job-r3-2.png")]
    [InlineData("{sku}-{locale}.{ext}", 0, 1, 2, "A1-de-r2.png")]
    [InlineData("{id}_{k}.{ext}", 1, 2, 2, "job_2-r2.png")]
    [InlineData("{locale}/{id}", 0, 1, 4, "de/job-r4.png")]
    public void For_LaterRevisionOfAnId_CarriesTheRevisionBeforeTheExtension(string? template, int index, int count, int revision, string expected)
    {
        var variables = new Dictionary<string, string> { ["sku"] = "A1", ["locale"] = "de" };

        OutputNames.For(template, "job", index, count, "png", variables, revision).ShouldBe(expected);
    }

    [Theory]
    [InlineData("../{id}.{ext}", "job", "_/job.png")]
    [InlineData("../../../../tmp/x.{ext}", "job", "_/_/_/_/tmp/x.png")]
    [InlineData("/etc/{id}.{ext}", "job", "etc/job.png")]
    [InlineData("..\\..\\{id}", "job", "_/_/job.png")]
    [InlineData("{sku}/{id}.{ext}", "job", "_x/job.png")]
    [InlineData("{id}/.{ext}", "a", "a/a.png")]
    [InlineData("{id}/{id}.{ext}", "..", "_/_.png")]
    [InlineData("out/CON.{ext}", "job", "out/_CON.png")]
    [InlineData("/", "job", "job.png")]
    public void For_TraversalTemplateOrId_NeverLeavesTheFolder(string template, string key, string expected)
    {
        var variables = new Dictionary<string, string> { ["sku"] = "../x" };
        var folder = Path.Combine(Path.GetTempPath(), "batch");

        var name = OutputNames.For(template, key, 0, 1, "png", variables);

        name.ShouldBe(expected);
        OutputNames.Resolve(folder, name).ShouldStartWith(folder + Path.DirectorySeparatorChar);
        name.Split('/').ShouldAllBe(s => s.Length > 0 && s != ".." && s != ".");
    }

    [Theory]
    [InlineData("../escape.png")]
    [InlineData("/etc/passwd")]
    [InlineData("a/../../b.png")]
    public void Resolve_PathOutsideFolder_Throws(string relative)
    {
        var folder = Path.Combine(Path.GetTempPath(), "batch");

        Should.Throw<InvalidDataException>(() => OutputNames.Resolve(folder, relative));
    }

    [Fact]
    public void Sniff_KnownSignatures_GiveTheirExtension()
    {
        ImageFormat.Sniff([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]).ShouldBe("png");
        ImageFormat.Sniff([0xFF, 0xD8, 0xFF, 0xE0]).ShouldBe("jpg");
        ImageFormat.Sniff("RIFF\0\0\0\0WEBPVP8 "u8).ShouldBe("webp");
        ImageFormat.Sniff("<html>"u8).ShouldBeNull();
    }
}

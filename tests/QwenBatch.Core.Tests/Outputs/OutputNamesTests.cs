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
    public void For_AnyKey_StaysInsideTheBatchFolder(string key, int index, int count, string expected)
    {
        var name = OutputNames.For(key, index, count, "png");

        name.ShouldBe(expected);
        Path.GetFileName(name).ShouldBe(name);
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

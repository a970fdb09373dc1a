using System.Text;
using QwenBatch.Simulator.Images;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.Images;

public sealed class PngEncoderTests
{
    [Fact]
    public void Crc32_OfCheckString_MatchesStandardValue() =>
        Crc32.Compute(Encoding.ASCII.GetBytes("123456789")).ShouldBe(0xCBF43926u);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(640, 480)]
    [InlineData(2048, 2048)]
    public async Task WriteRgbAsync_WritesValidPngOfRequestedSize(int width, int height)
    {
        using var output = new MemoryStream();
        var pattern = new TestPattern(123, 0, width, height);

        await PngEncoder.WriteRgbAsync(output, width, height, pattern.FillRow, CancellationToken.None);

        PngInspector.Inspect(output.ToArray()).ShouldBe((width, height));
    }

    [Fact]
    public async Task WriteRgbAsync_WithSameSeedAndIndex_IsDeterministic()
    {
        static async Task<byte[]> RenderAsync(int seed, int index)
        {
            using var output = new MemoryStream();
            await PngEncoder.WriteRgbAsync(output, 64, 64, new TestPattern(seed, index, 64, 64).FillRow, CancellationToken.None);
            return output.ToArray();
        }

        (await RenderAsync(5, 1)).ShouldBe(await RenderAsync(5, 1));
        (await RenderAsync(5, 1)).ShouldNotBe(await RenderAsync(5, 2));
        (await RenderAsync(5, 1)).ShouldNotBe(await RenderAsync(6, 1));
    }
}

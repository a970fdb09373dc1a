namespace QwenBatch.Simulator.Images;

/// <summary>
/// Deterministic picture for (seed, output index): horizontal and vertical gradients over a
/// seed-derived base colour, with bands whose height depends on the output index.
/// </summary>
internal sealed class TestPattern
{
    private readonly int _width;
    private readonly int _height;
    private readonly byte _baseRed;
    private readonly byte _baseGreen;
    private readonly byte _baseBlue;
    private readonly int _bandHeight;

    public TestPattern(int seed, int index, int width, int height)
    {
        _width = width;
        _height = height;
        var mixed = Mix((uint)seed ^ ((uint)index * 0x9E3779B9u));
        _baseRed = (byte)mixed;
        _baseGreen = (byte)(mixed >> 8);
        _baseBlue = (byte)(mixed >> 16);
        _bandHeight = 32 + (16 * index);
    }

    public void FillRow(int y, Span<byte> rgbRow)
    {
        var green = (byte)(_baseGreen + (y * 256 / _height));
        var blue = (byte)(_baseBlue ^ ((y / _bandHeight) % 2 == 0 ? 0x00 : 0x5A));
        for (var x = 0; x < _width; x++)
        {
            var offset = 3 * x;
            rgbRow[offset] = (byte)(_baseRed + (x * 256 / _width));
            rgbRow[offset + 1] = green;
            rgbRow[offset + 2] = blue;
        }
    }

    private static uint Mix(uint value)
    {
        // murmur3 finalizer: spreads nearby seeds to unrelated colours.
        value ^= value >> 16;
        value *= 0x85EBCA6Bu;
        value ^= value >> 13;
        value *= 0xC2B2AE35u;
        value ^= value >> 16;
        return value;
    }
}

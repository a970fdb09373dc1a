using System.Buffers.Binary;

namespace QwenBatch.Simulator.Images;

/// <summary>
/// Minimal lossless WEBP (RIFF + VP8L) of one flat colour: no transforms, no colour cache, and five "simple" prefix
/// codes of one symbol each (green, red, blue, alpha, distance), so every pixel costs zero bits. Valid for any decoder.
/// </summary>
internal static class WebpEncoder
{
    public const int MaxSide = 16384;

    public static async Task WriteFlatAsync(Stream output, int width, int height, byte red, byte green, byte blue, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(width, MaxSide);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(height, MaxSide);

        var bits = new LsbBits();
        bits.Write(0x2F, 8);          // VP8L signature
        bits.Write(width - 1, 14);
        bits.Write(height - 1, 14);
        bits.Write(0, 1);             // alpha is not used
        bits.Write(0, 3);             // version 0
        bits.Write(0, 1);             // no transform
        bits.Write(0, 1);             // no colour cache
        bits.Write(0, 1);             // one prefix code group for the whole image
        foreach (var symbol in (ReadOnlySpan<int>)[green, red, blue, 255])
            SimpleCode(bits, symbol, eightBits: true);
        SimpleCode(bits, 0, eightBits: false); // distance: never used
        var payload = bits.ToArray();

        var padded = payload.Length + (payload.Length & 1);
        var file = new byte[20 + padded];
        "RIFF"u8.CopyTo(file);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(4), (uint)(12 + padded));
        "WEBPVP8L"u8.CopyTo(file.AsSpan(8));
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(16), (uint)payload.Length);
        payload.CopyTo(file, 20);
        await output.WriteAsync(file, ct);
        await output.FlushAsync(ct);
    }

    private static void SimpleCode(LsbBits bits, int symbol, bool eightBits)
    {
        bits.Write(1, 1); // simple code
        bits.Write(0, 1); // one symbol
        bits.Write(eightBits ? 1 : 0, 1);
        bits.Write(symbol, eightBits ? 8 : 1);
    }

    private sealed class LsbBits
    {
        private readonly List<byte> _bytes = [];
        private int _used = 8;

        public void Write(int value, int count)
        {
            for (var i = 0; i < count; i++)
            {
                if (_used == 8)
                {
                    _bytes.Add(0);
                    _used = 0;
                }

                _bytes[^1] |= (byte)(((value >> i) & 1) << _used);
                _used++;
            }
        }

        public byte[] ToArray() => [.. _bytes];
    }
}

using System.Buffers.Binary;

namespace QwenBatch.Simulator.Images;

/// <summary>
/// Minimal baseline JPEG writer (JFIF, YCbCr 4:4:4, Huffman coded). Each 8×8 block keeps only its average colour (the DC
/// coefficient; every AC coefficient is zero), so the picture is the test pattern in 8-pixel tiles: small, fast and a
/// valid file any decoder reads. One DC table serves all three components; the AC table holds only end-of-block.
/// </summary>
internal static class JpegEncoder
{
    // Standard luminance DC code lengths (ITU T.81 table K.3): categories 0–11.
    private static readonly byte[] DcBits = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    private const int Quant = 8;

    public static async Task WriteRgbAsync(Stream output, int width, int height, RowFiller fillRow, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        using var buffer = new MemoryStream();
        WriteHeaders(buffer, width, height);
        var bits = new BitWriter(buffer);
        var (codes, lengths) = CanonicalCodes(DcBits);
        var blocksX = (width + 7) / 8;
        var sums = new long[blocksX * 3];
        var counts = new int[blocksX];
        var rgb = new byte[width * 3];
        Span<int> previous = stackalloc int[3];
        for (var top = 0; top < height; top += 8)
        {
            Array.Clear(sums);
            Array.Clear(counts);
            for (var y = top; y < Math.Min(top + 8, height); y++)
            {
                fillRow(y, rgb);
                for (var x = 0; x < width; x++)
                {
                    var b = x / 8;
                    sums[(3 * b) + 0] += rgb[3 * x];
                    sums[(3 * b) + 1] += rgb[(3 * x) + 1];
                    sums[(3 * b) + 2] += rgb[(3 * x) + 2];
                    counts[b]++;
                }
            }

            for (var b = 0; b < blocksX; b++)
            {
                double r = sums[3 * b] / (double)counts[b], g = sums[(3 * b) + 1] / (double)counts[b], bl = sums[(3 * b) + 2] / (double)counts[b];
                Span<double> ycc = [(0.299 * r) + (0.587 * g) + (0.114 * bl), (-0.168736 * r) - (0.331264 * g) + (0.5 * bl) + 128, (0.5 * r) - (0.418688 * g) - (0.081312 * bl) + 128];
                for (var c = 0; c < 3; c++)
                {
                    // DC of a flat block = 8 × (value − 128); quantized by 8 it is the level-shifted value itself.
                    var dc = (int)Math.Round(Math.Clamp(ycc[c], 0, 255)) - 128;
                    var diff = dc - previous[c];
                    previous[c] = dc;
                    var category = diff == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(diff));
                    bits.Write(codes[category], lengths[category]);
                    if (category > 0)
                        bits.Write(diff > 0 ? diff : diff + (1 << category) - 1, category);
                    bits.Write(0, 1); // end of block: the AC table's only code
                }
            }
        }

        bits.Flush();
        buffer.Write([0xFF, 0xD9]);
        buffer.Position = 0;
        await buffer.CopyToAsync(output, ct);
        await output.FlushAsync(ct);
    }

    private static void WriteHeaders(Stream s, int width, int height)
    {
        s.Write([0xFF, 0xD8]);
        Segment(s, 0xE0, [(byte)'J', (byte)'F', (byte)'I', (byte)'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
        var dqt = new byte[65];
        Array.Fill(dqt, (byte)Quant, 1, 64);
        Segment(s, 0xDB, dqt);
        var sof = new byte[15];
        sof[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(sof.AsSpan(1), checked((ushort)height));
        BinaryPrimitives.WriteUInt16BigEndian(sof.AsSpan(3), checked((ushort)width));
        sof[5] = 3;
        for (var c = 0; c < 3; c++)
        {
            sof[6 + (3 * c)] = (byte)(c + 1);
            sof[7 + (3 * c)] = 0x11;
            sof[8 + (3 * c)] = 0;
        }

        Segment(s, 0xC0, sof);
        Segment(s, 0xC4, [0x00, .. DcBits, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        Segment(s, 0xC4, [0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);
        Segment(s, 0xDA, [3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);
    }

    private static void Segment(Stream s, byte marker, ReadOnlySpan<byte> payload)
    {
        Span<byte> head = [0xFF, marker, 0, 0];
        BinaryPrimitives.WriteUInt16BigEndian(head[2..], checked((ushort)(payload.Length + 2)));
        s.Write(head);
        s.Write(payload);
    }

    /// <summary>Canonical Huffman codes (ITU T.81 annex C) for symbols 0..n-1 in order.</summary>
    private static (int[] Codes, int[] Lengths) CanonicalCodes(byte[] bits)
    {
        var codes = new List<int>();
        var lengths = new List<int>();
        var code = 0;
        for (var length = 1; length <= 16; length++)
        {
            for (var i = 0; i < bits[length - 1]; i++)
            {
                codes.Add(code++);
                lengths.Add(length);
            }

            code <<= 1;
        }

        return ([.. codes], [.. lengths]);
    }

    /// <summary>MSB-first entropy-coded bits with 0xFF byte stuffing; the last byte is padded with ones.</summary>
    private sealed class BitWriter(Stream output)
    {
        private int _buffer;
        private int _count;

        public void Write(int value, int length)
        {
            for (var i = length - 1; i >= 0; i--)
            {
                _buffer = (_buffer << 1) | ((value >> i) & 1);
                if (++_count == 8)
                    Emit();
            }
        }

        public void Flush()
        {
            while (_count != 0)
                Write(1, 1);
        }

        private void Emit()
        {
            output.WriteByte((byte)_buffer);
            if ((byte)_buffer == 0xFF)
                output.WriteByte(0);
            _buffer = 0;
            _count = 0;
        }
    }
}

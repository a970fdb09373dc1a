using System.Buffers.Binary;

namespace QwenBatch.Simulator.Tests.TestSupport;

/// <summary>Walks a JPEG's markers: SOI first, a baseline SOF0 with the size, Huffman and quantization tables, SOS, EOI last.</summary>
internal static class JpegInspector
{

    public static (int Width, int Height, int Components) Read(byte[] bytes)
    {
        bytes.Length.ShouldBeGreaterThan(4);
        (bytes[0], bytes[1]).ShouldBe(((byte)0xFF, (byte)0xD8), "SOI");
        (bytes[^2], bytes[^1]).ShouldBe(((byte)0xFF, (byte)0xD9), "EOI");
        var seen = new HashSet<byte>();
        (int, int, int)? frame = null;
        var at = 2;
        while (at + 4 <= bytes.Length && bytes[at] == 0xFF)
        {
            var marker = bytes[at + 1];
            var length = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at + 2));
            seen.Add(marker);
            if (marker == 0xC0)
            {
                bytes[at + 4].ShouldBe((byte)8, "8-bit precision");
                frame = (BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at + 7)), BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at + 5)), bytes[at + 9]);
            }

            if (marker == 0xDA)
                break;
            at += 2 + length;
        }

        seen.ShouldContain((byte)0xDB, "DQT");
        seen.ShouldContain((byte)0xC4, "DHT");
        seen.ShouldContain((byte)0xDA, "SOS");
        frame.ShouldNotBeNull("SOF0 (baseline)");
        return frame.Value;
    }
}

/// <summary>Reads a RIFF/WEBP file with a lossless VP8L chunk: the container sizes and the image size.</summary>
internal static class WebpInspector
{
    public static (int Width, int Height) Read(byte[] bytes)
    {
        System.Text.Encoding.ASCII.GetString(bytes, 0, 4).ShouldBe("RIFF");
        BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)).ShouldBe((uint)(bytes.Length - 8));
        System.Text.Encoding.ASCII.GetString(bytes, 8, 8).ShouldBe("WEBPVP8L");
        bytes[20].ShouldBe((byte)0x2F, "VP8L signature");
        var bits = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(21));
        ((bits >> 29) & 0x7).ShouldBe(0u, "VP8L version 0");
        return ((int)(bits & 0x3FFF) + 1, (int)((bits >> 14) & 0x3FFF) + 1);
    }
}

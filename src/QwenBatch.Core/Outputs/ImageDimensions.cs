using System.Buffers.Binary;

namespace QwenBatch.Outputs;

/// <summary>Width and height from the first bytes of a PNG, JPEG, GIF, BMP or WEBP file; no decoding, no library.</summary>
public static class ImageDimensions
{
    /// <summary>How much of a file to read: JPEG's size marker can follow an EXIF block with a thumbnail.</summary>
    public const int HeadBytes = 256 * 1024;

    public static (int Width, int Height)? Read(ReadOnlySpan<byte> head) => ImageFormat.Sniff(head) switch
    {
        "png" when head.Length >= 24 => (BinaryPrimitives.ReadInt32BigEndian(head[16..]), BinaryPrimitives.ReadInt32BigEndian(head[20..])),
        "gif" when head.Length >= 10 => (BinaryPrimitives.ReadUInt16LittleEndian(head[6..]), BinaryPrimitives.ReadUInt16LittleEndian(head[8..])),
        "bmp" when head.Length >= 26 => (BinaryPrimitives.ReadInt32LittleEndian(head[18..]), Math.Abs(BinaryPrimitives.ReadInt32LittleEndian(head[22..]))),
        "webp" => Webp(head),
        "jpg" => Jpeg(head),
        _ => null,
    };

    private static (int, int)? Webp(ReadOnlySpan<byte> h)
    {
        if (h.Length < 30)
        {
            return null;
        }

        var chunk = h[12..16];
        if (chunk.SequenceEqual("VP8 "u8))
        {
            return (BinaryPrimitives.ReadUInt16LittleEndian(h[26..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(h[28..]) & 0x3FFF);
        }

        if (chunk.SequenceEqual("VP8L"u8))
        {
            int b0 = h[21], b1 = h[22], b2 = h[23], b3 = h[24];
            return (1 + (b0 | ((b1 & 0x3F) << 8)), 1 + ((b1 >> 6) | (b2 << 2) | ((b3 & 0x0F) << 10)));
        }

        if (chunk.SequenceEqual("VP8X"u8))
        {
            return (1 + (h[24] | (h[25] << 8) | (h[26] << 16)), 1 + (h[27] | (h[28] << 8) | (h[29] << 16)));
        }

        return null;
    }

    private static (int, int)? Jpeg(ReadOnlySpan<byte> h)
    {
        var pos = 2;
        while (pos + 9 < h.Length)
        {
            if (h[pos] != 0xFF)
            {
                return null;
            }

            var marker = h[pos + 1];
            if (marker == 0xFF)
            {
                pos++;
                continue;
            }

            // SOF0…SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
            {
                return (BinaryPrimitives.ReadUInt16BigEndian(h[(pos + 7)..]), BinaryPrimitives.ReadUInt16BigEndian(h[(pos + 5)..]));
            }

            if (marker is 0x01 or (>= 0xD0 and <= 0xD9))
            {
                pos += 2;
                continue;
            }

            pos += 2 + BinaryPrimitives.ReadUInt16BigEndian(h[(pos + 2)..]);
        }

        return null;
    }
}

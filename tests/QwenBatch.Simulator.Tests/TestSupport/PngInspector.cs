using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using QwenBatch.Simulator.Images;

namespace QwenBatch.Simulator.Tests.TestSupport;

/// <summary>Checks a PNG the strict way: signature, chunk CRCs, IHDR, and that IDAT inflates to exactly the expected rows.</summary>
internal static class PngInspector
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static (int Width, int Height) Inspect(byte[] png)
    {
        png.AsSpan(0, 8).ToArray().ShouldBe(Signature);
        var offset = 8;
        int width = 0, height = 0;
        using var idat = new MemoryStream();
        var chunkTypes = new List<string>();
        while (offset < png.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(offset));
            var type = Encoding.ASCII.GetString(png, offset + 4, 4);
            var data = png.AsSpan(offset + 8, length);
            var crc = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(offset + 8 + length));
            crc.ShouldBe(Crc32.Compute(png.AsSpan(offset + 4, 4 + length)), $"CRC of {type}");
            chunkTypes.Add(type);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                data[8].ShouldBe((byte)8);
                data[9].ShouldBe((byte)2);
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }
            offset += 12 + length;
        }

        chunkTypes[0].ShouldBe("IHDR");
        chunkTypes[^1].ShouldBe("IEND");
        idat.Position = 0;
        using var inflater = new ZLibStream(idat, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        inflater.CopyTo(raw);
        raw.Length.ShouldBe((long)height * (1 + (3 * width)));
        return (width, height);
    }
}

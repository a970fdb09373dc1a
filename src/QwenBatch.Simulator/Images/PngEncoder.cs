using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;

namespace QwenBatch.Simulator.Images;

/// <summary>Fills one row of 8-bit RGB pixels (3 bytes per pixel).</summary>
internal delegate void RowFiller(int y, Span<byte> rgbRow);

/// <summary>
/// Minimal streaming PNG writer: 8-bit RGB, no interlace, filter type 0 on every row.
/// Memory stays at one row plus one IDAT chunk, whatever the image size. Optional padding goes into private ancillary
/// <c>qbPd</c> chunks of zeros before IEND, which decoders skip.
/// </summary>
internal static class PngEncoder
{
    private const int IdatChunkTarget = 64 * 1024;
    private const int PaddingChunk = 64 * 1024;
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly byte[] Zeros = new byte[PaddingChunk];

    public static async Task WriteRgbAsync(Stream output, int width, int height, RowFiller fillRow, CancellationToken ct, int padding = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);

        await output.WriteAsync(Signature, ct);

        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(0), width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type: truecolour (RGB)
        ihdr[10] = 0; // compression: deflate
        ihdr[11] = 0; // filter method 0
        ihdr[12] = 0; // no interlace
        await WriteChunkAsync(output, "IHDR"u8.ToArray(), ihdr, ct);

        var rowLength = 1 + (3 * width);
        var row = ArrayPool<byte>.Shared.Rent(rowLength);
        try
        {
            using var compressed = new MemoryStream(IdatChunkTarget * 2);
            // The deflater writes synchronously into the MemoryStream only; chunks go to the
            // (possibly network) output stream asynchronously, because Kestrel forbids sync writes.
            var zlib = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true);
            await using (zlib.ConfigureAwait(false))
            {
                for (var y = 0; y < height; y++)
                {
                    row[0] = 0; // filter: none
                    fillRow(y, row.AsSpan(1, rowLength - 1));
                    zlib.Write(row, 0, rowLength);
                    if (compressed.Length >= IdatChunkTarget)
                    {
                        await WriteChunkAsync(output, "IDAT"u8.ToArray(), compressed.GetBuffer().AsMemory(0, (int)compressed.Length), ct);
                        compressed.SetLength(0);
                    }
                }
            }

            if (compressed.Length > 0)
                await WriteChunkAsync(output, "IDAT"u8.ToArray(), compressed.GetBuffer().AsMemory(0, (int)compressed.Length), ct);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(row);
        }

        for (var left = padding; left > 0; left -= PaddingChunk)
            await WriteChunkAsync(output, "qbPd"u8.ToArray(), Zeros.AsMemory(0, Math.Min(left, PaddingChunk)), ct);

        await WriteChunkAsync(output, "IEND"u8.ToArray(), ReadOnlyMemory<byte>.Empty, ct);
        await output.FlushAsync(ct);
    }

    private static async Task WriteChunkAsync(Stream output, byte[] type, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var header = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
        type.CopyTo(header, 4);
        var crc = Crc32.Finish(Crc32.Append(Crc32.Append(Crc32.InitialState, type), data.Span));
        var trailer = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(trailer, crc);

        await output.WriteAsync(header, ct);
        if (!data.IsEmpty)
            await output.WriteAsync(data, ct);
        await output.WriteAsync(trailer, ct);
    }
}

using System.Buffers.Binary;
using System.Buffers.Text;
using QwenBatch.Simulator.Images;

namespace QwenBatch.Simulator.Tasks;

/// <summary>
/// Encodes a <see cref="SimTicket"/> as <c>sim_</c> + base64url of a 35-byte big-endian layout:
/// version(1) start_ms(8) done_ms(8) n(1) width(2) height(2) seed(4) flags(1) nonce(4) crc32(4).
/// Flags: bit 0 failed, bits 1–2 output format, bit 3 base64 outputs.
/// The CRC makes garbled ids decode as unknown (404) instead of as a different task.
/// </summary>
internal static class RequestIdCodec
{
    public const string Prefix = "sim_";
    private const byte Version = 1;
    private const int PayloadLength = 31;
    private const int TotalLength = PayloadLength + 4;
    private const byte FailedFlag = 0x01;
    private const byte FormatMask = 0x06;
    private const byte Base64Flag = 0x08;

    public static string Encode(SimTicket ticket)
    {
        Span<byte> bytes = stackalloc byte[TotalLength];
        bytes[0] = Version;
        BinaryPrimitives.WriteInt64BigEndian(bytes[1..], ticket.StartMs);
        BinaryPrimitives.WriteInt64BigEndian(bytes[9..], ticket.DoneMs);
        bytes[17] = checked((byte)ticket.Count);
        BinaryPrimitives.WriteUInt16BigEndian(bytes[18..], checked((ushort)ticket.Width));
        BinaryPrimitives.WriteUInt16BigEndian(bytes[20..], checked((ushort)ticket.Height));
        BinaryPrimitives.WriteInt32BigEndian(bytes[22..], ticket.Seed);
        bytes[26] = (byte)((ticket.Failed ? FailedFlag : 0) | (((int)ticket.Format << 1) & FormatMask) | (ticket.Base64 ? Base64Flag : 0));
        BinaryPrimitives.WriteUInt32BigEndian(bytes[27..], ticket.Nonce);
        BinaryPrimitives.WriteUInt32BigEndian(bytes[PayloadLength..], Crc32.Compute(bytes[..PayloadLength]));
        return Prefix + Base64Url.EncodeToString(bytes);
    }

    public static bool TryDecode(string? requestId, out SimTicket ticket)
    {
        ticket = default;
        if (requestId is null || !requestId.StartsWith(Prefix, StringComparison.Ordinal) || requestId.Length > 64)
            return false;

        var encoded = requestId.AsSpan(Prefix.Length);
        // TryDecodeFromChars throws on characters outside the alphabet, so check first.
        if (!Base64Url.IsValid(encoded, out var decodedLength) || decodedLength != TotalLength)
            return false;
        Span<byte> bytes = stackalloc byte[TotalLength];
        if (!Base64Url.TryDecodeFromChars(encoded, bytes, out var written) || written != TotalLength)
            return false;
        if (bytes[0] != Version || BinaryPrimitives.ReadUInt32BigEndian(bytes[PayloadLength..]) != Crc32.Compute(bytes[..PayloadLength]))
            return false;

        ticket = new SimTicket(
            StartMs: BinaryPrimitives.ReadInt64BigEndian(bytes[1..]),
            DoneMs: BinaryPrimitives.ReadInt64BigEndian(bytes[9..]),
            Count: bytes[17],
            Width: BinaryPrimitives.ReadUInt16BigEndian(bytes[18..]),
            Height: BinaryPrimitives.ReadUInt16BigEndian(bytes[20..]),
            Seed: BinaryPrimitives.ReadInt32BigEndian(bytes[22..]),
            Failed: (bytes[26] & FailedFlag) != 0,
            Nonce: BinaryPrimitives.ReadUInt32BigEndian(bytes[27..]),
            Format: (OutputFormat)((bytes[26] & FormatMask) >> 1),
            Base64: (bytes[26] & Base64Flag) != 0);
        return true;
    }
}

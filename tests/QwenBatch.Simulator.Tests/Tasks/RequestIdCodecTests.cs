using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Tests.Tasks;

public sealed class RequestIdCodecTests
{
    private static readonly SimTicket Sample = new(1_893_456_000_123, 1_893_456_000_923, 6, 2048, 512, int.MaxValue, true, 0xABCDEF01);

    [Fact]
    public void Encode_ThenDecode_RoundTrips()
    {
        var id = RequestIdCodec.Encode(Sample);

        id.ShouldStartWith("sim_");
        id.ShouldNotContain("=");
        RequestIdCodec.TryDecode(id, out var decoded).ShouldBeTrue();
        decoded.ShouldBe(Sample);
    }

    [Fact]
    public void TryDecode_WithAnyChangedCharacter_Fails()
    {
        var id = RequestIdCodec.Encode(Sample);
        for (var i = RequestIdCodec.Prefix.Length; i < id.Length; i++)
        {
            var changed = id[..i] + (id[i] == 'A' ? 'B' : 'A') + id[(i + 1)..];
            RequestIdCodec.TryDecode(changed, out _).ShouldBeFalse(changed);
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("sim_")]
    [InlineData("mmsu_01hxyz")]
    [InlineData("sim_!!!!")]
    public void TryDecode_WithForeignOrEmptyId_Fails(string? id) =>
        RequestIdCodec.TryDecode(id, out _).ShouldBeFalse();
}

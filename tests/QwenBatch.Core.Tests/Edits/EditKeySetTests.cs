using QwenBatch.Edits;

namespace QwenBatch.Core.Tests.Jobs;

public sealed class EditKeySetTests
{
    [Fact]
    public void TryAdd_KeySeenBefore_RefusedWithTheFirstNumber()
    {
        var keys = new EditKeySet();

        keys.TryAdd("product-1", 2, out _).ShouldBeTrue();
        keys.TryAdd("product-2", 3, out _).ShouldBeTrue();

        keys.TryAdd("product-1", 7, out var first).ShouldBeFalse();
        first.ShouldBe(2);
        keys.Count.ShouldBe(2);
    }

    [Fact]
    public void TryAdd_KeysDifferingInCaseOrLength_AreDistinct()
    {
        var keys = new EditKeySet();

        keys.TryAdd("Banner", 1, out _).ShouldBeTrue();
        keys.TryAdd("banner", 2, out _).ShouldBeTrue();
        keys.TryAdd("banner-1", 3, out _).ShouldBeTrue();
        keys.TryAdd("", 4, out _).ShouldBeTrue();
        keys.TryAdd("", 5, out var empty).ShouldBeFalse();

        empty.ShouldBe(4);
    }

    [Fact]
    public void TryAdd_ManyKeysAcrossBlocks_EachFoundWithItsNumber()
    {
        // 200,000 keys of 14 characters fill about 90 blocks and make the table grow 14 times.
        var keys = new EditKeySet();
        for (var i = 0; i < 200_000; i++)
        {
            keys.TryAdd($"product-{i:D6}", i, out _).ShouldBeTrue();
        }

        for (var i = 0; i < 200_000; i += 997)
        {
            keys.TryAdd($"product-{i:D6}", -1, out var number).ShouldBeFalse();
            number.ShouldBe(i);
        }

        keys.TryAdd("product-200000", 0, out _).ShouldBeTrue();
        keys.Count.ShouldBe(200_001);
    }

    [Fact]
    public void TryAdd_KeyLongerThanABlock_KeptWholeAndTheOpenBlockStillUsed()
    {
        var keys = new EditKeySet();
        var longKey = new string('x', 40_000) + "end";
        keys.TryAdd("before", 1, out _).ShouldBeTrue();
        keys.TryAdd(longKey, 2, out _).ShouldBeTrue();
        keys.TryAdd("after", 3, out _).ShouldBeTrue();

        keys.TryAdd(longKey, 9, out var forLong).ShouldBeFalse();
        forLong.ShouldBe(2);
        keys.TryAdd(longKey.AsSpan(0, longKey.Length - 1), 4, out _).ShouldBeTrue();
        keys.TryAdd("before", 9, out var forBefore).ShouldBeFalse();
        forBefore.ShouldBe(1);
        keys.TryAdd("after", 9, out var forAfter).ShouldBeFalse();
        forAfter.ShouldBe(3);
    }
}

using System.Runtime.InteropServices;

namespace QwenBatch.Jobs;

/// <summary>
/// The job keys of one batch seen so far, each with a number (the manifest line that named it): the uniqueness check of
/// an import. It holds every key of the batch at once, hundreds of thousands of them, so it keeps no string objects:
/// the keys' characters are copied into pinned blocks and the table holds only integers. A
/// <c>HashSet&lt;string&gt;</c> of the same keys made the garbage collector copy and trace each one through every
/// generation: a third of a 100,000-row manifest's validation time went to those pauses.
/// </summary>
internal sealed class JobKeySet
{
    /// <summary>Characters per block: 64 KB, allocated once on the pinned heap and never moved.</summary>
    private const int BlockChars = 32 * 1024;

    private readonly List<char[]> _blocks = [];
    private int[] _buckets = new int[16];
    private Entry[] _entries = new Entry[16];
    private int _open = -1;
    private int _openUsed = BlockChars;

    public int Count { get; private set; }

    /// <summary>Adds the key; false when it is already there.</summary>
    public bool Add(ReadOnlySpan<char> key) => TryAdd(key, 0, out _);

    /// <summary>Adds the key with its number; false when it is already there, with the number it was added with.</summary>
    public bool TryAdd(ReadOnlySpan<char> key, int number, out int existing)
    {
        var hash = string.GetHashCode(key);
        for (var i = _buckets[hash & (_buckets.Length - 1)] - 1; i >= 0; i = _entries[i].Next)
        {
            ref readonly var entry = ref _entries[i];
            if (entry.Hash == hash && key.SequenceEqual(_blocks[entry.Block].AsSpan(entry.Start, entry.Length)))
            {
                existing = entry.Number;
                return false;
            }
        }

        if (Count == _entries.Length)
        {
            Grow();
        }

        var (block, start) = Store(key);
        ref var bucket = ref _buckets[hash & (_buckets.Length - 1)];
        _entries[Count] = new Entry(hash, bucket - 1, block, start, key.Length, number);
        bucket = ++Count;
        existing = 0;
        return true;
    }

    private (int Block, int Start) Store(ReadOnlySpan<char> key)
    {
        if (key.Length > BlockChars)
        {
            // A key longer than a block gets a block of its own; the open block stays open for the next keys.
            _blocks.Add(key.ToArray());
            return (_blocks.Count - 1, 0);
        }

        if (key.Length > BlockChars - _openUsed)
        {
            _blocks.Add(GC.AllocateUninitializedArray<char>(BlockChars, pinned: true));
            _open = _blocks.Count - 1;
            _openUsed = 0;
        }

        var start = _openUsed;
        key.CopyTo(_blocks[_open].AsSpan(start));
        _openUsed += key.Length;
        return (_open, start);
    }

    private void Grow()
    {
        var entries = new Entry[_entries.Length * 2];
        _entries.CopyTo(entries, 0);
        var buckets = new int[_buckets.Length * 2];
        for (var i = 0; i < Count; i++)
        {
            ref var bucket = ref buckets[entries[i].Hash & (buckets.Length - 1)];
            entries[i].Next = bucket - 1;
            bucket = i + 1;
        }

        _entries = entries;
        _buckets = buckets;
    }

    /// <summary>One key: where its characters are, the next entry in its bucket's chain (-1 ends it), and its number.</summary>
    [StructLayout(LayoutKind.Auto)]
    private struct Entry(int hash, int next, int block, int start, int length, int number)
    {
        public readonly int Hash = hash;
        public int Next = next;
        public readonly int Block = block;
        public readonly int Start = start;
        public readonly int Length = length;
        public readonly int Number = number;
    }
}

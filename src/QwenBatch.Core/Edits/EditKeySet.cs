using System.Runtime.InteropServices;

namespace QwenBatch.Edits;

/// <summary>
/// The job keys of one batch seen so far, each with a number (the manifest line that named it): the uniqueness check of
/// an import. It holds every key of the batch at once, hundreds of thousands of them, so it keeps no string objects:
/// the keys' characters are copied into pinned blocks and the table holds only integers. A
/// <c>HashSet&lt;string&gt;</c> of the same keys made the garbage collector copy and trace each one through every
/// generation: a third of a 100,000-row manifest's validation time went to those pauses.
/// </summary>
internal sealed class EditKeySet
{
    /// <summary>Characters per block: 64 KB, allocated once on the pinned heap and never moved.</summary>
    private const int BlockChars = 32 * 1024;

    private readonly List<char[]> _blocks = [];

    /// <summary>
    /// Open addressing, at most half full: each slot is 0 (empty) or a key's hash in its high half and its entry's index
    /// plus one in its low half, so a new key — the usual case — costs one look at one slot (the chained table it replaced
    /// looked at a bucket and then at entries spread over megabytes: a cache miss each, a sixth of an import's planning).
    /// </summary>
    private long[] _slots = new long[32];

    private Entry[] _entries = new Entry[16];
    private int _open = -1;
    private int _openUsed = BlockChars;

    public int Count { get; private set; }

    /// <summary>Adds the key; false when it is already there.</summary>
    public bool Add(ReadOnlySpan<char> key) => TryAdd(key, 0, out _);

    /// <summary>Whether the key is there, with the number it was added with.</summary>
    public bool Contains(ReadOnlySpan<char> key, out int number)
    {
        var index = Find(key, string.GetHashCode(key), out _);
        number = index < 0 ? 0 : _entries[index].Number;
        return index >= 0;
    }

    /// <summary>Adds the key with its number; false when it is already there, with the number it was added with.</summary>
    public bool TryAdd(ReadOnlySpan<char> key, int number, out int existing)
    {
        var hash = string.GetHashCode(key);
        var index = Find(key, hash, out var slot);
        if (index >= 0)
        {
            existing = _entries[index].Number;
            return false;
        }

        if (Count == _entries.Length)
        {
            Grow();
            Find(key, hash, out slot);
        }

        var (block, start) = Store(key);
        _entries[Count] = new Entry(hash, block, start, key.Length, number);
        _slots[slot] = Slot(hash, Count);
        Count++;
        existing = 0;
        return true;
    }

    /// <summary>The key's entry, or -1 and the empty slot it would take.</summary>
    private int Find(ReadOnlySpan<char> key, int hash, out int empty)
    {
        var mask = _slots.Length - 1;
        var i = hash & mask;
        for (long slot; (slot = _slots[i]) != 0; i = (i + 1) & mask)
        {
            if ((int)(slot >> 32) == hash)
            {
                var index = (int)slot - 1;
                ref readonly var entry = ref _entries[index];
                if (key.SequenceEqual(_blocks[entry.Block].AsSpan(entry.Start, entry.Length)))
                {
                    empty = -1;
                    return index;
                }
            }
        }

        empty = i;
        return -1;
    }

    private static long Slot(int hash, int index) => ((long)hash << 32) | (uint)(index + 1);

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
        var slots = new long[_slots.Length * 2];
        var mask = slots.Length - 1;
        for (var index = 0; index < Count; index++)
        {
            var hash = entries[index].Hash;
            var i = hash & mask;
            while (slots[i] != 0)
            {
                i = (i + 1) & mask;
            }

            slots[i] = Slot(hash, index);
        }

        _entries = entries;
        _slots = slots;
    }

    /// <summary>One key: its hash (for growing), where its characters are, and its number.</summary>
    [StructLayout(LayoutKind.Auto)]
    private readonly struct Entry(int hash, int block, int start, int length, int number)
    {
        public readonly int Hash = hash;
        public readonly int Block = block;
        public readonly int Start = start;
        public readonly int Length = length;
        public readonly int Number = number;
    }
}

namespace QwenBatch.Simulator.Tasks;

/// <summary>
/// The in-memory side of one simulator instance: the concurrency-slot schedule, the tasks it
/// accepted (for queue positions and stats) and the cancelled set. Task state is never stored:
/// it is computed from the ticket and the clock on every read, so there are no timers.
/// </summary>
internal sealed class TaskBoard
{
    private readonly Lock _gate = new();
    private readonly SimulatorOptions _options;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly long[] _slotFreeAtMs;
    private readonly List<LocalTask> _tasks = [];
    private readonly Dictionary<SimTicket, long> _canceledAtMs = [];
    private readonly uint _instanceTag;
    private uint _sequence;

    public TaskBoard(SimulatorOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
        _random = options.RandomSeed is { } seed ? new Random(seed) : new Random();
        _slotFreeAtMs = new long[options.MaxConcurrent];
        // High bits differ per instance so a restarted simulator does not reissue an old id.
        _instanceTag = (uint)Random.Shared.Next(0, 1 << 12) << 20;
    }

    public long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    public SimTicket Submit(TaskSpec spec)
    {
        lock (_gate)
        {
            var now = NowMs;
            var slot = 0;
            for (var i = 1; i < _slotFreeAtMs.Length; i++)
            {
                if (_slotFreeAtMs[i] < _slotFreeAtMs[slot])
                    slot = i;
            }

            var latencyMs = (long)Math.Round(
                _options.LatencyMin.TotalMilliseconds
                + (_random.NextDouble() * (_options.LatencyMax - _options.LatencyMin).TotalMilliseconds));
            var start = Math.Max(now, _slotFreeAtMs[slot]);
            var done = start + latencyMs;
            _slotFreeAtMs[slot] = done;

            var failed = _options.FailRate > 0 && _random.NextDouble() < _options.FailRate;
            var seed = spec.Seed ?? _random.Next(0, int.MaxValue);
            var nonce = _instanceTag | (++_sequence & 0xFFFFF);
            var ticket = new SimTicket(start, done, spec.Count, spec.Width, spec.Height, seed, failed, nonce, spec.Format, spec.Base64);
            _tasks.Add(new LocalTask(ticket, slot));
            return ticket;
        }
    }

    /// <summary>Tasks accepted and not yet finished or cancelled (queued or running), as of now.</summary>
    public int Active()
    {
        lock (_gate)
        {
            var now = NowMs;
            return _tasks.Count(t => t.Ticket.DoneMs > now && !_canceledAtMs.ContainsKey(t.Ticket));
        }
    }

    public SimTaskView Observe(SimTicket ticket)
    {
        lock (_gate)
        {
            var now = NowMs;
            if (_canceledAtMs.ContainsKey(ticket))
                return new SimTaskView(SimTaskState.Canceled, 0);
            if (now >= ticket.DoneMs)
                return new SimTaskView(ticket.Failed ? SimTaskState.Failed : SimTaskState.Completed, 0);
            if (now >= ticket.StartMs)
                return new SimTaskView(SimTaskState.InProgress, 0);
            return new SimTaskView(SimTaskState.InQueue, QueuePositionOf(ticket, now));
        }
    }

    public CancelOutcome Cancel(SimTicket ticket)
    {
        lock (_gate)
        {
            var now = NowMs;
            if (_canceledAtMs.ContainsKey(ticket))
                return CancelOutcome.CancellationRequested;
            if (now >= ticket.DoneMs)
                return CancelOutcome.AlreadyCompleted;

            _canceledAtMs[ticket] = now;
            // Give the slot back when nothing was scheduled after this task on it; later tasks
            // keep the start times already written into their ids.
            var local = _tasks.FindLast(t => t.Ticket == ticket);
            if (local is not null && _slotFreeAtMs[local.Slot] == ticket.DoneMs)
                _slotFreeAtMs[local.Slot] = Math.Max(now, ticket.StartMs);
            return CancelOutcome.CancellationRequested;
        }
    }

    /// <summary>Charged images (completed, not cancelled) and peak IN_PROGRESS count, as of now.</summary>
    public (long ChargedImages, int MaxConcurrent) Measure()
    {
        lock (_gate)
        {
            var now = NowMs;
            long charged = 0;
            var events = new List<(long At, int Delta)>(_tasks.Count * 2);
            foreach (var task in _tasks)
            {
                var ticket = task.Ticket;
                var end = ticket.DoneMs;
                if (_canceledAtMs.TryGetValue(ticket, out var canceledAt))
                    end = Math.Min(end, canceledAt);
                else if (!ticket.Failed && now >= ticket.DoneMs)
                    charged += ticket.Count;

                if (ticket.StartMs <= now && end > ticket.StartMs)
                {
                    events.Add((ticket.StartMs, +1));
                    events.Add((Math.Min(end, now + 1), -1));
                }
            }

            // Intervals are half-open, so at equal times ends are applied before starts.
            events.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Delta.CompareTo(b.Delta));
            int current = 0, peak = 0;
            foreach (var (_, delta) in events)
            {
                current += delta;
                peak = Math.Max(peak, current);
            }
            return (charged, peak);
        }
    }

    private int QueuePositionOf(SimTicket ticket, long now)
    {
        // Tasks of this instance still waiting and due to start before this one.
        var ahead = 0;
        foreach (var task in _tasks)
        {
            var other = task.Ticket;
            if (other.StartMs <= now || _canceledAtMs.ContainsKey(other) || other == ticket)
                continue;
            if (other.StartMs < ticket.StartMs || (other.StartMs == ticket.StartMs && other.Nonce < ticket.Nonce))
                ahead++;
        }
        return ahead;
    }

    private sealed record LocalTask(SimTicket Ticket, int Slot);
}

using System.Reflection;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.Server;

/// <summary>
/// A store whose chosen transitions wait at a gate before they are written (a slow database round trip, held as long as
/// the test likes), that records which jobs were claimed and how many each claim asked for, and whose claims after the
/// first few can be held at a gate too. Every other call goes straight to the real store.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1852", Justification = "DispatchProxy derives a type from it at run time.")]
internal class GatedStore : DispatchProxy
{
    private IJobStore _inner = null!;
    private Func<EditTransition, bool> _held = null!;
    private Task _gate = null!;
    private readonly List<long> _claimed = [];
    private readonly List<int> _asked = [];
    private int _claimsBeforeGate = int.MaxValue;
    private Task _claimGate = Task.CompletedTask;

    /// <summary>The ids of every job claimed so far, in claim order.</summary>
    public IReadOnlyList<long> Claimed
    {
        get
        {
            lock (_claimed)
            {
                return [.. _claimed];
            }
        }
    }

    /// <summary>How many jobs each claim asked for, in claim order (held claims included).</summary>
    public IReadOnlyList<int> Asked
    {
        get
        {
            lock (_claimed)
            {
                return [.. _asked];
            }
        }
    }

    /// <summary>Claims after the first <paramref name="count"/> wait at <paramref name="gate"/> before they claim.</summary>
    public void HoldClaimsAfter(int count, Task gate)
    {
        _claimsBeforeGate = count;
        _claimGate = gate;
    }

    public static (IJobStore Store, GatedStore Gate) Wrap(IJobStore inner, Func<EditTransition, bool> held, Task gate)
    {
        var store = Create<IJobStore, GatedStore>();
        var gated = (GatedStore)(object)store;
        gated._inner = inner;
        gated._held = held;
        gated._gate = gate;
        return (store, gated);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        ArgumentNullException.ThrowIfNull(args);
        return targetMethod.Name switch
        {
            nameof(IJobStore.TransitionAsync) when _held((EditTransition)args[0]!) => HoldAsync(() => _inner.TransitionAsync((EditTransition)args[0]!, CancellationToken.None)),
            nameof(IJobStore.TransitionManyAsync) when ((IReadOnlyList<EditTransition>)args[0]!).Any(_held) =>
                HoldAsync(() => _inner.TransitionManyAsync((IReadOnlyList<EditTransition>)args[0]!, CancellationToken.None)),
            nameof(IJobStore.ClaimAsync) => ClaimAsync((ClaimRequest)args[0]!, (CancellationToken)args[1]!),
            _ => Forward(targetMethod, args),
        };
    }

    private async Task<T> HoldAsync<T>(Func<Task<T>> write)
    {
        await _gate;
        return await write();
    }

    private async Task<IReadOnlyList<EditRecord>> ClaimAsync(ClaimRequest request, CancellationToken ct)
    {
        bool held;
        lock (_claimed)
        {
            _asked.Add(request.Limit);
            held = _asked.Count > _claimsBeforeGate;
        }

        if (held)
        {
            await _claimGate.WaitAsync(ct);
        }

        var jobs = await _inner.ClaimAsync(request, ct);
        lock (_claimed)
        {
            _claimed.AddRange(jobs.Select(j => j.Id));
        }

        return jobs;
    }

    private object? Forward(MethodInfo method, object?[] args)
    {
        try
        {
            return method.Invoke(_inner, args);
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            throw ex.InnerException;
        }
    }
}

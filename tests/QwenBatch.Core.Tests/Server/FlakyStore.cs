using System.Reflection;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.Server;

/// <summary>
/// A store whose chosen calls fail, as a database restart makes them fail: numbered per method (1 = first call), every
/// other call goes to the real store.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1852", Justification = "DispatchProxy derives a type from it at run time.")]
internal class FlakyStore : DispatchProxy
{
    private IJobStore _inner = null!;
    private Func<string, int, bool> _fails = null!;
    private readonly Dictionary<string, int> _calls = [];

    public int Failures { get; private set; }

    public static (IJobStore Store, FlakyStore Faults) Wrap(IJobStore inner, Func<string, int, bool> fails)
    {
        var store = Create<IJobStore, FlakyStore>();
        var faults = (FlakyStore)(object)store;
        faults._inner = inner;
        faults._fails = fails;
        return (store, faults);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        int call;
        lock (_calls)
        {
            call = _calls[targetMethod.Name] = _calls.GetValueOrDefault(targetMethod.Name) + 1;
            if (_fails(targetMethod.Name, call))
            {
                Failures++;
                throw new IOException($"store unavailable ({targetMethod.Name} call {call})");
            }
        }

        try
        {
            return targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException ex) when (ex.InnerException is not null)
        {
            throw ex.InnerException;
        }
    }
}

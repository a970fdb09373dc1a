using System.Reflection;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.FlowControl;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.FlowControl;

public sealed class LatencyMemoryTests
{
    private static readonly LatencyKey Key = LatencyModel.Key("odirouter", 1, "1024*1024");

    [Fact]
    public async Task SyncAsync_SecondSyncWhileTheFirstSaves_WaitsAndSavesNothingTwice()
    {
        var model = new LatencyModel();
        for (var i = 0; i < 8; i++)
        {
            model.Observe(Key, TimeSpan.FromSeconds(6));
        }

        var store = DispatchProxy.Create<IFlowControlStore, HeldLatencyStore>();
        var held = (HeldLatencyStore)(object)store;
        var memory = new LatencyMemory(store, model, NullLogger<LatencyMemory>.Instance);

        var periodic = memory.SyncAsync(CancellationToken.None);
        var atStop = memory.SyncAsync(CancellationToken.None);
        held.Saves.Count.ShouldBe(1);
        held.Release.SetResult();

        (await periodic, await atStop).ShouldBe((true, true));
        held.Saves.Select(saved => saved.Sum(l => l.Samples)).ShouldBe([8L, 0L]);
        model.Unsaved().ShouldBeEmpty();
    }

    /// <summary>A store whose latency merge is held until released, and records what each merge was given.</summary>
    public class HeldLatencyStore : DispatchProxy
    {
        public List<IReadOnlyList<ProviderLatency>> Saves { get; } = [];

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name != nameof(IFlowControlStore.MergeLatenciesAsync))
            {
                throw new NotSupportedException(targetMethod?.Name);
            }

            var saved = (IReadOnlyList<ProviderLatency>)args![0]!;
            Saves.Add(saved);
            return MergeAsync(saved);
        }

        private async Task<IReadOnlyList<ProviderLatency>> MergeAsync(IReadOnlyList<ProviderLatency> saved)
        {
            await Release.Task;
            return saved;
        }
    }
}

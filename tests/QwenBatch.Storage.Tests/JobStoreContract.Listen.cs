using QwenBatch.Server;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    /// <summary>Real time: the pulse travels through a database connection, not through the fake clock.</summary>
    private static readonly TimeSpan SignalWait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ListenAsync_JobsImported_PulsesTheSignal()
    {
        var importer = SignalsAcrossInstances ? OpenStore() : Store;
        await using var listener = await ListenAsync(Store);

        await importer.ImportBatchAsync(Batch(), NewJobs(2), Ct);

        (await PulsedAsync(listener.Next)).ShouldBeTrue("the import should have woken the listener");
    }

    [Fact]
    public async Task ListenAsync_LeasesRescued_PulsesTheSignal()
    {
        var rescuer = SignalsAcrossInstances ? OpenStore() : Store;
        await ImportAndClaimAsync(1);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        await using var listener = await ListenAsync(Store);

        (await rescuer.RescueExpiredLeasesAsync(10, Ct)).ShouldBe(1);

        (await PulsedAsync(listener.Next)).ShouldBeTrue("rescued jobs are new work");
    }

    [Fact]
    public async Task ListenAsync_Cancelled_Stops()
    {
        var listener = await ListenAsync(Store);

        await listener.DisposeAsync();

        listener.Listening.IsCompleted.ShouldBeTrue();
    }

    private static async Task<bool> PulsedAsync(Task next) =>
        await Task.WhenAny(next, Task.Delay(SignalWait)) == next;

    /// <summary>Starts listening in the background and returns once the listener is ready, with the pulse to wait for.</summary>
    private async Task<Listener> ListenAsync(IJobStore store)
    {
        var signal = new WorkSignal();
        var first = signal.Next;
        var cts = new CancellationTokenSource();
        var listening = store.ListenAsync(signal, cts.Token);
        if (PulsesWhenListening)
        {
            // The listener pulses once when it has connected; a pulse taken before that could be the connect pulse.
            for (var i = 0; i < 100 && !first.IsCompleted && !listening.IsCompleted; i++)
            {
                await Task.WhenAny(first, Task.Delay(TimeSpan.FromMilliseconds(100)));
            }

            first.IsCompleted.ShouldBeTrue($"the listener did not connect ({listening.Exception?.GetBaseException().Message})");
        }

        // Otherwise the listener is in-process and registered by the time ListenAsync returns its task.
        listening.IsCompleted.ShouldBeFalse($"the listener stopped early ({listening.Exception?.GetBaseException().Message})");
        return new Listener(signal.Next, listening, cts);
    }

    private sealed class Listener(Task next, Task listening, CancellationTokenSource cts) : IAsyncDisposable
    {
        public Task Next => next;

        public Task Listening => listening;

        public async ValueTask DisposeAsync()
        {
            await cts.CancelAsync();
            try
            {
                await listening.WaitAsync(SignalWait);
            }
            catch (OperationCanceledException)
            {
                // Stopping by cancellation is the contract; returning quietly is fine too.
            }
            finally
            {
                cts.Dispose();
            }
        }
    }
}

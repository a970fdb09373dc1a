using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;

namespace QwenBatch.Hangfire.Tests.Feeding;

/// <summary>Which moves wake the feeder: those that may give it room (in its queue window, under a MaxInFlight) or work.</summary>
public sealed class EngineSignalsTests
{
    [Theory]
    [InlineData(EditState.Queued, EditState.Submitting)]
    [InlineData(EditState.AtProvider, EditState.Downloading)]
    [InlineData(EditState.AtProvider, EditState.Failed)]
    [InlineData(EditState.Submitting, EditState.Pending)]
    [InlineData(EditState.Held, EditState.Pending)]
    public void Moved_ToRoomOrWork_WakesTheFeeder(EditState from, EditState to)
    {
        var signals = new EngineSignals();
        var wake = signals.FeederWake;

        signals.Moved(from, Edit(to));

        wake.IsCompleted.ShouldBeTrue();
    }

    [Theory]
    [InlineData(EditState.Submitting, EditState.AtProvider)]
    [InlineData(EditState.Downloading, EditState.Succeeded)]
    [InlineData(EditState.Pending, EditState.Queued)]
    public void Moved_WithinFlightOrAfterIt_LeavesTheFeederAsleep(EditState from, EditState to)
    {
        var signals = new EngineSignals();
        var wake = signals.FeederWake;

        signals.Moved(from, Edit(to));

        wake.IsCompleted.ShouldBeFalse();
    }

    private static EditRecord Edit(EditState state) => new()
    {
        Id = 1,
        BatchId = 1,
        Key = "e1",
        ContentHash = "h",
        State = state,
        Provider = "simulator",
        Spec = new EditSpec { Prompt = "p", Images = ["https://example.test/a.png"], N = 1 },
        DueAt = DateTimeOffset.UnixEpoch,
        CreatedAt = DateTimeOffset.UnixEpoch,
    };
}

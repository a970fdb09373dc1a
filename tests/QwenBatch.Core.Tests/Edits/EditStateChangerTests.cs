using QwenBatch.Edits;

namespace QwenBatch.Core.Tests.Edits;

public sealed class EditStateChangerTests
{
    [Theory]
    [InlineData(EditState.Pending, EditState.Queued)]
    [InlineData(EditState.Queued, EditState.Submitting)]
    [InlineData(EditState.Submitting, EditState.AtProvider)]
    [InlineData(EditState.Submitting, EditState.Queued)]
    [InlineData(EditState.Queued, EditState.Pending)]
    [InlineData(EditState.AtProvider, EditState.AtProvider)]
    [InlineData(EditState.AtProvider, EditState.Downloading)]
    [InlineData(EditState.Downloading, EditState.Succeeded)]
    [InlineData(EditState.Failed, EditState.Pending)]
    public void IsAllowed_HappyPathAndRetry_Allowed(EditState from, EditState to) => EditStateChanger.IsAllowed(from, to).ShouldBeTrue();

    [Theory]
    [InlineData(EditState.Pending, EditState.Submitting)]
    [InlineData(EditState.Pending, EditState.AtProvider)]
    [InlineData(EditState.Pending, EditState.Succeeded)]
    [InlineData(EditState.Held, EditState.Queued)]
    [InlineData(EditState.Succeeded, EditState.Pending)]
    [InlineData(EditState.Downloading, EditState.Submitting)]
    public void IsAllowed_SkippingOrLeavingSucceeded_Refused(EditState from, EditState to) => EditStateChanger.IsAllowed(from, to).ShouldBeFalse();

    [Fact]
    public void States_TerminalAndSettled_AreTheDocumentedSets()
    {
        Enum.GetValues<EditState>().Where(s => s.IsTerminal()).ShouldBe([EditState.Succeeded, EditState.Failed, EditState.Cancelled]);
        Enum.GetValues<EditState>().Where(s => s.IsSettled()).ShouldBe(EditStates.Settled);
        Enum.GetValues<EditState>().ShouldAllBe(s => EditStates.Parse(s.ToDbName()) == s);
    }
}

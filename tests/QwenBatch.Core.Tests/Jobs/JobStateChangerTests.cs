using QwenBatch.Jobs;

namespace QwenBatch.Core.Tests.Jobs;

public sealed class JobStateChangerTests
{
    [Theory]
    [InlineData(JobState.Pending, JobState.Submitting)]
    [InlineData(JobState.Submitting, JobState.AtProvider)]
    [InlineData(JobState.AtProvider, JobState.AtProvider)]
    [InlineData(JobState.AtProvider, JobState.Downloading)]
    [InlineData(JobState.Downloading, JobState.Succeeded)]
    [InlineData(JobState.Failed, JobState.Pending)]
    public void IsAllowed_HappyPathAndRetry_Allowed(JobState from, JobState to) => JobStateChanger.IsAllowed(from, to).ShouldBeTrue();

    [Theory]
    [InlineData(JobState.Pending, JobState.AtProvider)]
    [InlineData(JobState.Pending, JobState.Succeeded)]
    [InlineData(JobState.Succeeded, JobState.Pending)]
    [InlineData(JobState.Downloading, JobState.Submitting)]
    public void IsAllowed_SkippingOrLeavingSucceeded_Refused(JobState from, JobState to) => JobStateChanger.IsAllowed(from, to).ShouldBeFalse();

    [Fact]
    public void States_TerminalAndSettled_AreTheDocumentedSets()
    {
        Enum.GetValues<JobState>().Where(s => s.IsTerminal()).ShouldBe([JobState.Succeeded, JobState.Failed, JobState.Cancelled]);
        Enum.GetValues<JobState>().Where(s => s.IsSettled()).ShouldBe(JobStates.Settled);
        Enum.GetValues<JobState>().ShouldAllBe(s => JobStates.Parse(s.ToDbName()) == s);
    }
}

namespace QwenBatch.Simulator.Tests;

public sealed class SimulatorOptionsTests
{
    [Fact]
    public void Defaults_AreTheDocumentedOnes()
    {
        var options = new SimulatorOptions();

        options.LatencyMin.ShouldBe(TimeSpan.FromMilliseconds(300));
        options.LatencyMax.ShouldBe(TimeSpan.FromMilliseconds(800));
        options.MaxConcurrent.ShouldBe(16);
        options.PricePerImage.ShouldBe(0.02m);
        options.FailRate.ShouldBe(0);
        options.RandomSeed.ShouldBeNull();
        options.Host.ShouldBe("127.0.0.1");
        Should.NotThrow(options.Validate);
    }

    [Fact]
    public void Validate_WithMaxBelowMin_SaysWhichOption()
    {
        var options = new SimulatorOptions { LatencyMin = TimeSpan.FromSeconds(2), LatencyMax = TimeSpan.FromSeconds(1) };

        Should.Throw<ArgumentException>(options.Validate).Message.ShouldContain("LatencyMax");
    }

    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(1, 1.5)]
    public void Validate_WithOutOfRangeValues_Throws(int maxConcurrent, double failRate)
    {
        var options = new SimulatorOptions { MaxConcurrent = maxConcurrent, FailRate = failRate };

        Should.Throw<ArgumentException>(options.Validate);
    }

    [Fact]
    public void Validate_WithNegativeOutputPadding_SaysWhichOption()
    {
        var options = new SimulatorOptions { OutputPadding = -1 };

        Should.Throw<ArgumentException>(options.Validate).Message.ShouldContain("OutputPadding");
    }
}

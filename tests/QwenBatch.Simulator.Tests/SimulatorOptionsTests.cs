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
        (options.WebhookDropRate, options.WebhookDuplicateRate, options.WebhookBadSignatureRate).ShouldBe((0, 0, 0));
        (options.WebhookDelayMin, options.WebhookDelayMax).ShouldBe((TimeSpan.Zero, TimeSpan.Zero));
        options.WebhookSecret.ShouldBeNull();
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

    [Theory]
    [InlineData("my-secret")]
    [InlineData("whsec_")]
    [InlineData("whsec_two words")]
    public void Validate_WithMalformedWebhookSecret_SaysWhatIsExpectedWithoutRepeatingIt(string secret)
    {
        var options = new SimulatorOptions { WebhookSecret = secret };

        var message = Should.Throw<ArgumentException>(options.Validate).Message;

        message.ShouldBe("Simulator WebhookSecret must be \"whsec_\" followed by the key, without spaces.");
    }

    [Fact]
    public void Validate_WithWebhookDelayMaxBelowMin_SaysWhichOption()
    {
        var options = new SimulatorOptions { WebhookDelayMin = TimeSpan.FromSeconds(2), WebhookDelayMax = TimeSpan.FromSeconds(1) };

        Should.Throw<ArgumentException>(options.Validate).Message.ShouldBe("Simulator WebhookDelayMax (00:00:01) must not be less than WebhookDelayMin (00:00:02).");
    }

    [Fact]
    public void Validate_WithWebhookRateAboveOne_SaysWhichOption()
    {
        var options = new SimulatorOptions { WebhookDuplicateRate = 1.5 };

        Should.Throw<ArgumentException>(options.Validate).Message.ShouldStartWith("Simulator WebhookDuplicateRate must be between 0 and 1");
    }
}

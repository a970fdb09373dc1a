using System.ComponentModel.DataAnnotations;
using QwenBatch.Providers;

namespace QwenBatch.Core.Tests.Providers;

public sealed class ProviderOptionsTests
{
    [Fact]
    public void Validate_ReuseMarginNotShorterThanTheRetention_NamesTheSettingAndWhy()
    {
        var options = new ProviderOptions { UploadKeptFor = TimeSpan.FromDays(1), UploadReuseMargin = TimeSpan.FromDays(1) };
        var errors = new List<ValidationResult>();

        Validator.TryValidateObject(options, new ValidationContext(options), errors, validateAllProperties: true).ShouldBeFalse();

        var error = errors.ShouldHaveSingleItem();
        error.MemberNames.ShouldBe([nameof(ProviderOptions.UploadReuseMargin)]);
        error.ErrorMessage.ShouldBe("The field UploadReuseMargin must be shorter than UploadKeptFor (1.00:00:00), or no upload would ever be reused.");
    }

    [Fact]
    public void Validate_Defaults_AreValidAndReuseAnUploadForSixDays()
    {
        var options = new ProviderOptions();

        Validator.TryValidateObject(options, new ValidationContext(options), [], validateAllProperties: true).ShouldBeTrue();
        (options.UploadKeptFor - options.UploadReuseMargin).ShouldBe(TimeSpan.FromDays(6));
    }
}

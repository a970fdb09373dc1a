using QwenBatch.Manifests;

namespace QwenBatch.Core.Tests.Manifests;

/// <summary>
/// Manifests uploaded to the dashboard may name local images only inside Dashboard:InputRoot: no climbing, no absolute
/// path, and no symbolic link (the file's or a folder's on the way) that leads out of the root.
/// </summary>
public sealed class InputRootTests : IDisposable
{
    private readonly ManifestFolder _folder = new();
    private readonly string _root;
    private readonly string _outside;

    public InputRootTests()
    {
        _root = Directory.CreateDirectory(Path.Combine(_folder.Dir, "root")).FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_folder.Dir, "secret")).FullName;

        // Real images outside, so only the confinement can refuse them.
        File.Copy(Path.Combine(_folder.Dir, "a.png"), Path.Combine(_outside, "a.png"));
        File.Copy(Path.Combine(_folder.Dir, "a.png"), Path.Combine(_root, "ok.png"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "linked"), _outside);
        File.CreateSymbolicLink(Path.Combine(_root, "file-link.png"), Path.Combine(_outside, "a.png"));
        Directory.CreateDirectory(Path.Combine(_root, "sub"));
        File.CreateSymbolicLink(Path.Combine(_root, "sub", "inner-link.png"), Path.Combine(_root, "ok.png"));
    }

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData("linked/a.png")]
    [InlineData("file-link.png")]
    [InlineData("../secret/a.png")]
    [InlineData("sub/../../secret/a.png")]
    public void Read_ImageLeavingTheInputRoot_IsRefused(string image)
    {
        var manifest = _folder.Read("upload.csv", $"id,prompt,images\n1,p,{image}\n2,p,ok.png\n", new ManifestOptions { InputRoot = _root });

        manifest.IsValid.ShouldBeFalse();
        var error = manifest.Errors.ShouldHaveSingleItem();
        error.Line.ShouldBe(2);
        error.Message.ShouldContain("outside the input root");
    }

    [Fact]
    public void Read_AbsolutePathToAnImage_IsRefused()
    {
        var manifest = _folder.Read("upload.csv", $"id,prompt,images\n1,p,{Path.Combine(_outside, "a.png")}\n", new ManifestOptions { InputRoot = _root });

        manifest.Errors.ShouldHaveSingleItem().Message.ShouldContain("outside the input root");
    }

    [Fact]
    public void Read_LinkInsideTheRootToAnotherImageInside_IsAccepted()
    {
        var manifest = _folder.Read("upload.csv", "id,prompt,images\n1,p,sub/inner-link.png\n", new ManifestOptions { InputRoot = _root });

        manifest.Errors.ShouldBeEmpty();
    }
}

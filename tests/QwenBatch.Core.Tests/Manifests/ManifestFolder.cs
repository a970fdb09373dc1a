using QwenBatch.Manifests;

namespace QwenBatch.Core.Tests.Manifests;

/// <summary>A temporary folder with a real 512x512 PNG header (a.png), where test manifests are written and read.</summary>
internal sealed class ManifestFolder : IDisposable
{
    public ManifestFolder()
    {
        var png = new byte[33];
        new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R' }.CopyTo(png, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 512);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 512);
        File.WriteAllBytes(Path.Combine(Dir, "a.png"), png);
        var small = (byte[])png.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(small.AsSpan(16), 100);
        File.WriteAllBytes(Path.Combine(Dir, "small.png"), small);
        File.WriteAllText(Path.Combine(Dir, "notes.png"), "not an image");
    }

    public string Dir { get; } = Directory.CreateTempSubdirectory("qwenbatch-manifest-").FullName;

    public string Write(string name, string text)
    {
        var path = Path.Combine(Dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    public Manifest Read(string name, string text, ManifestOptions? options = null) => ManifestReader.Read(Write(name, text), options);

    public void Dispose() => Directory.Delete(Dir, recursive: true);
}

namespace QwenBatch.Cli.Tests.Support;

/// <summary>A fresh working folder with a copy of the repository's samples, as a user's checkout would have.</summary>
internal sealed class Workspace : IDisposable
{
    public Workspace()
    {
        Root = Directory.CreateTempSubdirectory("qwenbatch-cli-").FullName;
        CopyDirectory(Path.Combine(CliProcess.RepositoryRoot, "samples"), Path.Combine(Root, "samples"));
    }

    public string Root { get; }

    public string BatchDir(string name) => Path.Combine(Root, "output", name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort; the temp folder is the OS's to clean.
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (var dir in Directory.GetDirectories(from))
        {
            CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
        }
    }
}

using System.Diagnostics;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>
/// A storage folder whose disk can be filled and emptied again: a small tmpfs mounted for the test (the test machines
/// and CI run as root). Filling writes one filler file until the file system answers "No space left on device".
/// </summary>
internal sealed class FullDisk : IDisposable
{
    private readonly string _filler;

    private FullDisk(string path)
    {
        Path = path;
        _filler = System.IO.Path.Combine(path, ".filler");
    }

    public string Path { get; }

    public static FullDisk Mount(string path, string size)
    {
        Directory.CreateDirectory(path);
        Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", path);
        return new FullDisk(path);
    }

    /// <summary>Writes until the disk is full; returns the bytes it took.</summary>
    public long Fill()
    {
        var buffer = new byte[64 * 1024];
        long written = 0;
        using var file = new FileStream(_filler, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        try
        {
            while (true)
            {
                file.Write(buffer);
                written += buffer.Length;
            }
        }
        catch (IOException)
        {
            // ENOSPC: the disk is full, as intended. Smaller writes take the last few bytes too.
            for (var size = buffer.Length / 2; size > 0; size /= 2)
            {
                try
                {
                    file.Write(buffer, 0, size);
                    written += size;
                }
                catch (IOException)
                {
                    // Too big for what is left: try half.
                }
            }
        }

        return written;
    }

    public void Free() => File.Delete(_filler);

    public void Dispose()
    {
        // Lazy: a worker killed mid-write may still hold a file open for a moment.
        Run("umount", "-l", Path);
    }

    private static void Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{file} {string.Join(' ', args)}' exited with {process.ExitCode}: {error} (the full-disk test mounts a tmpfs and needs root)");
        }
    }
}

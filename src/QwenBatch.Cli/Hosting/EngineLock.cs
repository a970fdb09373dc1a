namespace QwenBatch.Cli.Hosting;

/// <summary>
/// On the embedded store, Hangfire lives in one process's memory, and that process treats every unfinished edit as its
/// own to resume: two such processes on one state folder would each resume the other's edits. So one process at a time
/// runs edits on a state folder; the lock file holds its pid, and the operating system releases it when the process ends,
/// however it ends.
/// </summary>
internal sealed class EngineLock : IDisposable
{
    private const string FileName = "engine.lock";
    private readonly FileStream _file;

    private EngineLock(FileStream file) => _file = file;

    public static EngineLock Take(string stateDirectory)
    {
        Directory.CreateDirectory(stateDirectory);
        var path = Path.Combine(stateDirectory, FileName);
        try
        {
            var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
            file.SetLength(0);
            using (var writer = new StreamWriter(file, leaveOpen: true))
            {
                writer.Write(Environment.ProcessId);
            }

            file.Flush();
            return new EngineLock(file);
        }
        catch (IOException)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration,
                $"Another QwenBatch process (pid {Holder(path)}) is running edits on the state folder {stateDirectory}; wait for it to finish, "
                + "or run a fleet on PostgreSQL with --database.");
        }
    }

    public void Dispose() => _file.Dispose();

    /// <summary>Whether no process runs edits on the state folder now.</summary>
    public static bool IsFree(string stateDirectory)
    {
        try
        {
            using var taken = Take(stateDirectory);
            return true;
        }
        catch (CliException)
        {
            return false;
        }
    }

    /// <summary>The pid the holder wrote, when the lock lets it be read.</summary>
    private static string Holder(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(file);
            return reader.ReadToEnd().Trim() is { Length: > 0 } pid ? pid : "?";
        }
        catch (IOException)
        {
            return "?";
        }
    }
}

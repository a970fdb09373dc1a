namespace QwenBatch.Reports;

/// <summary>Writes a report under a hidden temporary name and renames it when whole, so a reader never sees half a file.</summary>
internal static class AtomicFile
{
    public static async Task WriteAsync(string directory, string fileName, Func<string, Task> write)
    {
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{fileName}.{Guid.NewGuid():N}.part");
        try
        {
            await write(temp);
            File.Move(temp, Path.Combine(directory, fileName), overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }
}

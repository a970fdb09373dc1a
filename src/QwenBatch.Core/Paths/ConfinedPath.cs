namespace QwenBatch.Paths;

/// <summary>
/// Whether a path stays inside a root once symbolic links are followed. A lexical check ("starts with the root") is not
/// enough: a link anywhere below the root (a folder or the file itself) can lead out of it, and writing or reading through
/// it would touch whatever it points at. The root itself may be a link (an operator's choice).
/// </summary>
public static class ConfinedPath
{
    /// <summary>Links followed before giving up, as the kernel's own limit (ELOOP).</summary>
    private const int MaxLinks = 40;

    /// <summary>True when <paramref name="path"/>, with every link in it followed, is <paramref name="root"/> or below it.</summary>
    public static bool IsInside(string root, string path)
    {
        var realRoot = Path.TrimEndingDirectorySeparator(RealPath(root));
        var real = RealPath(path);
        return real == realRoot || real.StartsWith(realRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }

    /// <summary>
    /// The absolute path with every symbolic link resolved, as realpath(3) would, except that parts that do not exist yet are
    /// kept as they are (a file about to be written). Throws <see cref="IOException"/> on a link loop.
    /// </summary>
    public static string RealPath(string path)
    {
        var separator = Path.DirectorySeparatorChar;
        var full = Path.GetFullPath(path);
        var rootPrefix = Path.GetPathRoot(full) ?? separator.ToString();
        var pending = new List<string>(full[rootPrefix.Length..].Split(separator, StringSplitOptions.RemoveEmptyEntries));
        var current = rootPrefix;
        var links = 0;
        while (pending.Count > 0)
        {
            var next = Path.Combine(current, pending[0]);
            pending.RemoveAt(0);
            if (new FileInfo(next).LinkTarget is not { } target)
            {
                current = next;
                continue;
            }

            if (++links > MaxLinks)
            {
                throw new IOException($"Too many symbolic links in '{path}'.");
            }

            // A relative target is relative to the link's folder; the walk starts again over the target and what is left.
            var resolved = Path.GetFullPath(target, current);
            var resolvedRoot = Path.GetPathRoot(resolved) ?? separator.ToString();
            pending.InsertRange(0, resolved[resolvedRoot.Length..].Split(separator, StringSplitOptions.RemoveEmptyEntries));
            current = resolvedRoot;
        }

        return current;
    }
}

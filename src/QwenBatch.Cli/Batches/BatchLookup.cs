using QwenBatch.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Storage;

namespace QwenBatch.Cli.Batches;

/// <summary>Finds the batch a command names, by id or by name; an unknown batch is a usage error.</summary>
internal static class BatchLookup
{
    public static async Task<BatchRecord> FindAsync(IBatchStore store, string idOrName, CancellationToken ct)
    {
        // A name may look like a number ("2024"), so a numeric argument that is no batch id is tried as a name.
        if (long.TryParse(idOrName, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
            && await store.GetBatchAsync(id, ct) is { } byId)
        {
            return byId;
        }

        return await store.FindBatchAsync(idOrName, ct)
            ?? throw new CliException(ExitCodes.UsageOrConfiguration, $"No batch '{idOrName}' in the store; 'qwenbatch status' lists the batches.");
    }
}

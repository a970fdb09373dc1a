namespace QwenBatch.Dashboard;

/// <summary>
/// The <c>Dashboard</c> section. Like Hangfire, pages and API answer loopback requests only, unless credentials are set:
/// <see cref="ApiToken"/> lets remote clients call <c>/api</c> with <c>Authorization: Bearer …</c>; <see cref="User"/> and
/// <see cref="Password"/> let remote browsers open the pages with basic auth (use HTTPS in front of it).
/// </summary>
public sealed class DashboardOptions
{
    public const string SectionName = "Dashboard";

    /// <summary>Bearer token for remote API calls; null refuses remote API calls.</summary>
    public string? ApiToken { get; set; }

    /// <summary>Basic-auth user for remote page views; with <see cref="Password"/>, or remote page views are refused.</summary>
    public string? User { get; set; }

    public string? Password { get; set; }

    /// <summary>
    /// The only folder an uploaded manifest may name local images in, unless the images come with it; null allows URLs,
    /// data URIs and uploaded images only.
    /// </summary>
    public string? InputRoot { get; set; }

    /// <summary>The output root uploaded batches write to (<c>Storage:Root</c> by default).</summary>
    public string StorageRoot { get; set; } = "output";

    /// <summary>
    /// The provider of an uploaded batch when the request names none; null makes the request name it (a paid provider is
    /// never picked for the caller).
    /// </summary>
    public string? DefaultProvider { get; set; }

    /// <summary>Hangfire's dashboard without its buttons (requeue, delete, trigger): for a replica that only watches.</summary>
    public bool ReadOnly { get; set; }
}

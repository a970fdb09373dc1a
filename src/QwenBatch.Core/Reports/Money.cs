using System.Globalization;

namespace QwenBatch.Reports;

/// <summary>
/// Money as people read it: US dollars with two decimals, more only for a fraction of a cent (a $0.025 price stays
/// $0.025, never $0.03). Reports' machine-readable columns keep the full amount.
/// </summary>
public static class Money
{
    public static string Usd(decimal value) => "$" + Amount(value);

    /// <summary>The amount without the sign, for a column headed "USD".</summary>
    public static string Amount(decimal value) => value.ToString("0.00##", CultureInfo.InvariantCulture);
}

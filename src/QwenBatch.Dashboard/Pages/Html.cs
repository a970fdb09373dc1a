using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;

namespace QwenBatch.Dashboard.Pages;

/// <summary>Server-rendered HTML: every value is encoded, every form carries the antiforgery token.</summary>
internal static class Html
{
    public static string E(object? value) => WebUtility.HtmlEncode(Convert.ToString(value, CultureInfo.InvariantCulture) ?? "");

    public static string Usd(decimal value) => value.ToString("0.00##", CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset? value) => value is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) : "";

    /// <summary>A POST form with the antiforgery token, a confirm-free button and optional hidden fields.</summary>
    public static string Form(HttpContext context, string action, string label, string css = "")
    {
        var tokens = Token(context);
        return $"<form method=\"post\" action=\"{E(action)}\" class=\"inline\">{tokens}<button class=\"{css}\" type=\"submit\">{E(label)}</button></form>";
    }

    public static string Token(HttpContext context)
    {
        var antiforgery = (IAntiforgery)context.RequestServices.GetService(typeof(IAntiforgery))!;
        var set = antiforgery.GetAndStoreTokens(context);
        return $"<input type=\"hidden\" name=\"{E(set.FormFieldName)}\" value=\"{E(set.RequestToken)}\">";
    }

    public static IResult Page(string title, string body)
    {
        var html = new StringBuilder();
        html.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(title)).Append(" · QwenBatch</title>");
        html.Append("<style>").Append(Css).Append("</style></head><body><nav><b>QwenBatch</b>");
        foreach (var (href, label) in Nav)
        {
            html.Append(CultureInfo.InvariantCulture, $"<a href=\"{href}\">{label}</a>");
        }

        html.Append("</nav><main><h1>").Append(E(title)).Append("</h1>").Append(body).Append("</main></body></html>");
        return Results.Content(html.ToString(), "text/html; charset=utf-8");
    }

    private static readonly (string Href, string Label)[] Nav =
    [
        ("/dashboard", "Overview"), ("/dashboard/batches", "Batches"), ("/hangfire", "Hangfire: jobs, servers, recurring jobs"),
    ];

    private const string Css = """
        body{font-family:system-ui,sans-serif;margin:0;color:#222}nav{background:#234;padding:.6em 1em}nav a,nav b{color:#fff;margin-right:1.2em;text-decoration:none}
        main{padding:1em 1.5em}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
        .cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:8em}.card b{display:block;font-size:1.6em}
        .bar{background:#eee;width:12em;height:.9em;border-radius:4px;overflow:hidden;display:flex}.bar span{display:block;height:100%}
        .ok{background:#3a3}.bad{background:#c33}.mid{background:#39c}.inline{display:inline}button{margin:.1em}.stale{color:#c33;font-weight:bold}
        .states a{margin-right:.8em}pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}img.thumb{max-width:160px;max-height:160px;border:1px solid #ccc}
        figure{margin:.5em 0 1em}figcaption{font-size:.9em;color:#555}.swatch{display:inline-block;width:.8em;height:.8em}
        """;
}

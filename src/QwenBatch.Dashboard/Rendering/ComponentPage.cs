using Hangfire.Dashboard;
using Hangfire.Dashboard.Pages;

namespace QwenBatch.Dashboard.Rendering;

/// <summary>
/// A page of Hangfire's dashboard (its layout, navigation, antiforgery meta tags and scripts) whose body is a Razor
/// component. Hangfire renders pages synchronously, so the component's rendering is waited for here; ASP.NET Core has no
/// synchronization context to deadlock on, and Hangfire's own pages block on their storage the same way.
/// </summary>
internal sealed class ComponentPage<TComponent>(string title, Func<RazorPage, IReadOnlyDictionary<string, object?>> parameters) : RazorPage
    where TComponent : Microsoft.AspNetCore.Components.IComponent
{
    public override void Execute()
    {
        Layout = new LayoutPage(title);
        var services = Context.GetHttpContext().RequestServices;
        WriteLiteral(ComponentHtml.RenderAsync<TComponent>(services, parameters(this)).GetAwaiter().GetResult());

        // A page showing work under way asks to be shown again (an element carries data-refresh, in ms); Hangfire's own
        // pages refresh the same way.
        WriteLiteral("<script>(() => { const r = document.querySelector('[data-refresh]'); if (r) setTimeout(() => location.reload(), Number(r.dataset.refresh)); })();</script>");
    }
}

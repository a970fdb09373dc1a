using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace QwenBatch.Dashboard.Rendering;

/// <summary>
/// Renders a Razor component to HTML with the request's services: the component loads its own data (through
/// <c>@inject</c> and <c>OnInitializedAsync</c>), and Razor encodes every value it writes.
/// </summary>
internal static class ComponentHtml
{
    public static async Task<string> RenderAsync<TComponent>(IServiceProvider services, IReadOnlyDictionary<string, object?> parameters)
        where TComponent : IComponent
    {
        await using var renderer = new HtmlRenderer(services, services.GetRequiredService<ILoggerFactory>());
        return await renderer.Dispatcher.InvokeAsync(async () =>
        {
            var output = await renderer.RenderComponentAsync<TComponent>(ParameterView.FromDictionary(parameters.ToDictionary(p => p.Key, p => p.Value)));
            return output.ToHtmlString();
        });
    }
}

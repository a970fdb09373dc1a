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
        WriteLiteral(Script);
    }

    /// <summary>
    /// A page showing work under way asks to be shown again (an element carries data-refresh, in ms), as Hangfire's own
    /// pages refresh, unless the reader is already leaving it: a reload fired just after a click on a link would take
    /// them back to this page instead of where they meant to go. An upload form (data-upload) posts its files to the API and shows the new batch, or the manifest's
    /// errors, written as text.
    /// </summary>
    private const string Script = """
        <script>
        (() => {
          const refresh = document.querySelector('[data-refresh]');
          if (refresh) {
            const timer = setTimeout(() => location.reload(), Number(refresh.dataset.refresh));
            const stay = () => clearTimeout(timer);
            document.addEventListener('click', event => { if (event.target.closest('a[href]')) stay(); }, true);
            window.addEventListener('beforeunload', stay);
          }
          for (const form of document.querySelectorAll('form[data-upload]')) {
            form.addEventListener('submit', async event => {
              event.preventDefault();
              const data = new FormData(form), query = new URLSearchParams();
              for (const key of ['provider', 'name', 'budget']) { const value = data.get(key); if (value) query.set(key, value); data.delete(key); }
              const errors = form.querySelector('.upload-errors'), button = form.querySelector('button');
              errors.replaceChildren();
              button.disabled = true;
              try {
                const response = await fetch(form.dataset.upload + '?' + query, { method: 'POST', body: data });
                const body = await response.json().catch(() => ({ error: 'HTTP ' + response.status }));
                if (response.ok) { location.href = form.dataset.batches + '/' + body.batch; return; }
                const problems = body.errors
                  ? body.errors.map(e => (e.line ? 'line ' + e.line + ', ' : '') + (e.field ? e.field + ': ' : '') + e.message)
                  : [body.error || 'HTTP ' + response.status];
                for (const problem of problems) { const item = document.createElement('li'); item.textContent = problem; errors.appendChild(item); }
              } catch (failure) {
                const item = document.createElement('li'); item.textContent = String(failure); errors.appendChild(item);
              } finally {
                button.disabled = false;
              }
            });
          }
        })();
        </script>
        """;
}

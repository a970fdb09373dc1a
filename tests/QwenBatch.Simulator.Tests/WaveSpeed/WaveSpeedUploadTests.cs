using Microsoft.Extensions.Time.Testing;
using System.Net;
using System.Net.Http.Headers;
using QwenBatch.Simulator.Tests.TestSupport;

namespace QwenBatch.Simulator.Tests.WaveSpeed;

/// <summary>The documented media upload: multipart <c>file</c>, Bearer, images by their bytes up to 20 MB, served back, usable in a submit.</summary>
public sealed class WaveSpeedUploadTests
{
    private const string Upload = "api/v3/media/upload/binary";
    private const string Submit = "api/v3/wavespeed-ai/qwen-image/edit-plus";

    /// <summary>A PNG signature and a little more: the simulator tells formats by their first bytes.</summary>
    private static readonly byte[] Png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 1, 2, 3, 4, 5];

    [Fact]
    public async Task Upload_Png_AnswersTheDocumentedShapeAndServesTheBytesBackWithoutAuth()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());

        using var response = await sim.Client.PostAsync(Upload, File(Png, "banner.png"));

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var json = await SimulatorScope.ReadJsonAsync(response);
        json.GetProperty("code").GetInt32().ShouldBe(200);
        json.GetProperty("message").GetString().ShouldBe("success");
        var data = json.GetProperty("data");
        data.GetProperty("type").GetString().ShouldBe("image");
        data.GetProperty("filename").GetString().ShouldBe("banner.png");
        data.GetProperty("size").GetInt64().ShouldBe(Png.Length);
        var url = data.GetProperty("download_url").GetString()!;
        url.ShouldStartWith(sim.Host.BaseUrl.AbsoluteUri + "_sim/uploads/");

        using var anonymous = new HttpClient();
        using var download = await anonymous.GetAsync(url);
        download.StatusCode.ShouldBe(HttpStatusCode.OK);
        download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
        (await download.Content.ReadAsByteArrayAsync()).ShouldBe(Png);
        sim.Host.GetStats().Uploads.ShouldBe(1);
        (await sim.Client.GetStringAsync("_sim/stats")).ShouldContain("\"uploads\":1");
    }

    [Theory]
    [InlineData("notes.png", new byte[] { (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o' })]
    [InlineData("empty.png", new byte[0])]
    public async Task Upload_NotAnImage_Answers400AndStoresNothing(string name, byte[] bytes)
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());

        using var response = await sim.Client.PostAsync(Upload, File(bytes, name));

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await SimulatorScope.ReadJsonAsync(response)).GetProperty("code").GetInt32().ShouldBe(400);
        sim.Host.GetStats().Uploads.ShouldBe(0);
    }

    [Fact]
    public async Task Upload_OverTwentyMegabytes_Answers413()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        var big = new byte[(20 * 1024 * 1024) + 1];
        Png.CopyTo(big, 0);

        using var response = await sim.Client.PostAsync(Upload, File(big, "huge.png"));

        response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await SimulatorScope.ReadJsonAsync(response)).GetProperty("code").GetInt32().ShouldBe(413);
        sim.Host.GetStats().Uploads.ShouldBe(0);
    }

    [Fact]
    public async Task Upload_WithoutBearer_Answers401()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        sim.Client.DefaultRequestHeaders.Authorization = null;

        using var response = await sim.Client.PostAsync(Upload, File(Png, "banner.png"));

        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        sim.Host.GetStats().Uploads.ShouldBe(0);
    }

    [Fact]
    public async Task Submit_NamingAnUploadedFile_IsAcceptedAndCompletes()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        var url = await UploadAsync(sim);

        using var submitted = await sim.Client.PostAsync(Submit, SimulatorScope.Json($$"""{"prompt":"p","images":["{{url}}"],"size":"320*256"}"""));

        submitted.StatusCode.ShouldBe(HttpStatusCode.OK, await submitted.Content.ReadAsStringAsync());
        var id = (await SimulatorScope.ReadJsonAsync(submitted)).GetProperty("data").GetProperty("id").GetString()!;
        for (var i = 0; i < 400; i++)
        {
            var (_, result) = await sim.GetAsync($"api/v3/predictions/{id}/result");
            if (result.GetProperty("data").GetProperty("status").GetString() == "completed")
                return;
            await Task.Delay(25);
        }

        throw new ShouldAssertException("the task naming the uploaded file never completed");
    }

    [Fact]
    public async Task Submit_NamingAnUploadOfThisSimulatorThatDoesNotExist_Answers400()
    {
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions());
        var url = sim.Host.BaseUrl.AbsoluteUri + "_sim/uploads/0123456789abcdef/banner.png";

        using var submitted = await sim.Client.PostAsync(Submit, SimulatorScope.Json($$"""{"prompt":"p","images":["{{url}}"]}"""));

        submitted.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await SimulatorScope.ReadJsonAsync(submitted)).GetProperty("message").GetString()!.ShouldStartWith("images[0]: the uploaded file is unknown or expired");
    }

    [Fact]
    public async Task Upload_SevenDaysLater_IsGoneAndASubmitNamingItIsRefused()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimulatorScope.StartAsync(SimulatorScope.FastOptions(), time);
        var url = await UploadAsync(sim);
        time.Advance(TimeSpan.FromDays(7) - TimeSpan.FromSeconds(1));
        using (var stillThere = await new HttpClient().GetAsync(url))
            stillThere.StatusCode.ShouldBe(HttpStatusCode.OK);

        time.Advance(TimeSpan.FromSeconds(1));

        using (var gone = await new HttpClient().GetAsync(url))
            gone.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        using var submitted = await sim.Client.PostAsync(Submit, SimulatorScope.Json($$"""{"prompt":"p","images":["{{url}}"]}"""));
        submitted.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
    }

    private static async Task<string> UploadAsync(SimulatorScope sim)
    {
        using var response = await sim.Client.PostAsync(Upload, File(Png, "banner.png"));
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return (await SimulatorScope.ReadJsonAsync(response)).GetProperty("data").GetProperty("download_url").GetString()!;
    }

    private static MultipartFormDataContent File(byte[] bytes, string name)
    {
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return new MultipartFormDataContent { { file, "file", name } };
    }
}

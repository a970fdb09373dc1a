using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using QwenBatch.Simulator.Odirouter;

namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>
/// WaveSpeed's media upload as its API page documents it — <c>POST /api/v3/media/upload/binary</c>, multipart field
/// <c>file</c>, Bearer auth, images up to 20 MB in JPG, PNG, WebP, GIF, BMP or TIFF, answered
/// <c>{code, message, data: {type, download_url, filename, size}}</c>, errors 400 (invalid file or format), 401, 413 — and
/// the two-step upload the official JS SDK (npm <c>wavespeed</c> 0.3) sends instead: a JSON ticket to
/// <c>POST /api/v3/media/uploads</c>, then a PUT of the bytes to the URL it answers. Either way the bytes are served back
/// at <c>download_url</c> on the simulator's own host, which a submit may then name as an input image.
/// </summary>
internal sealed class WaveSpeedUploads(WaveSpeedApi api, UploadShelf shelf)
{
    public const string BinaryPath = "/api/v3/media/upload/binary";
    public const string TicketPath = "/api/v3/media/uploads";

    /// <summary>Room for the multipart framing around a file at the size limit.</summary>
    private const long FramingAllowance = 64 * 1024;

    public async Task<IResult> UploadBinaryAsync(HttpContext context)
    {
        if (await api.EnterAsync(context) is { } stopped)
            return stopped;
        if (context.Request.ContentLength > UploadShelf.MaxImageBytes + FramingAllowance)
            return TooLarge();
        if (!context.Request.HasFormContentType)
            return WaveSpeedApi.Error(400, "file: a multipart/form-data body with a 'file' field is required");

        IFormFile? file;
        try
        {
            file = (await context.Request.ReadFormAsync(context.RequestAborted)).Files.GetFile("file");
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge();
        }
        catch (InvalidDataException)
        {
            return WaveSpeedApi.Error(400, "file: a multipart/form-data body with a 'file' field is required");
        }

        if (file is null || file.Length == 0)
            return WaveSpeedApi.Error(400, "file: a non-empty file is required");
        if (file.Length > UploadShelf.MaxImageBytes)
            return TooLarge();

        var bytes = new byte[file.Length];
        await using (var stream = file.OpenReadStream())
            await stream.ReadExactlyAsync(bytes, context.RequestAborted);
        if (UploadFormats.Sniff(bytes) is not { } contentType)
            return UnsupportedFormat();

        var (id, name) = UploadShelf.NewAddress(file.FileName);
        shelf.Put(id, name, bytes, contentType);
        return Uploaded(new WaveSpeedUpload("image", DownloadUrl(context.Request, id, name), name, bytes.Length));
    }

    /// <summary>The SDK's first step: a ticket for one file, answered with where to PUT it and where it will be served.</summary>
    public async Task<IResult> TicketAsync(HttpContext context)
    {
        if (await api.EnterAsync(context) is { } stopped)
            return stopped;

        string? fileName;
        long size;
        try
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted);
            var root = body.RootElement;
            fileName = root.TryGetProperty("filename", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            size = root.TryGetProperty("size", out var s) && s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var n) ? n : -1;
        }
        catch (JsonException)
        {
            return WaveSpeedApi.Error(400, "body: a JSON object with filename and size was expected");
        }

        if (string.IsNullOrWhiteSpace(fileName) || size <= 0)
            return WaveSpeedApi.Error(400, "body: a JSON object with filename and size was expected");
        if (size > UploadShelf.MaxImageBytes)
            return TooLarge();

        var (id, name) = UploadShelf.NewAddress(fileName);
        shelf.Ticket(id, new UploadTicket(name, size));
        var url = DownloadUrl(context.Request, id, name);
        return TypedResults.Json(new WaveSpeedTicketEnvelope(200, "success", new WaveSpeedTicket(url, new WaveSpeedUploadInstruction(url, "PUT",
            new Dictionary<string, string> { ["Content-Type"] = "application/octet-stream" }))), SimulatorJsonContext.Default.WaveSpeedTicketEnvelope);
    }

    /// <summary>The SDK's second step: the bytes, to a URL only a ticket opened (a presigned URL needs no bearer).</summary>
    public async Task<IResult> PutAsync(HttpContext context, string id, string name)
    {
        if (shelf.Redeem(id, name) is not { } ticket)
            return WaveSpeedApi.Error(403, "no upload ticket for this URL");
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        if (buffer.Length != ticket.Size)
            return WaveSpeedApi.Error(400, $"file: {ticket.Size} bytes were announced, {buffer.Length} arrived");
        var bytes = buffer.ToArray();
        if (UploadFormats.Sniff(bytes) is not { } contentType)
            return UnsupportedFormat();
        shelf.Put(id, name, bytes, contentType);
        return Results.Ok();
    }

    /// <summary>The stored bytes, like a CDN: no auth; gone once WaveSpeed would have deleted them.</summary>
    public IResult Download(string id, string name) =>
        shelf.Find(id, name) is { } file ? Results.Bytes(file.Bytes, file.ContentType) : Results.NotFound();

    private static string DownloadUrl(HttpRequest request, string id, string name) =>
        $"{request.Scheme}://{request.Host}{request.PathBase}{UploadShelf.FilesPath}/{id}/{name}";

    private static JsonHttpResult<WaveSpeedUploadEnvelope> Uploaded(WaveSpeedUpload upload) =>
        TypedResults.Json(new WaveSpeedUploadEnvelope(200, "success", upload), SimulatorJsonContext.Default.WaveSpeedUploadEnvelope);

    private static JsonHttpResult<WaveSpeedEnvelope> TooLarge() => WaveSpeedApi.Error(413, $"file: images of at most {UploadShelf.MaxImageBytes / (1024 * 1024)} MB are accepted");

    private static JsonHttpResult<WaveSpeedEnvelope> UnsupportedFormat() => WaveSpeedApi.Error(400, "file: a JPG, JPEG, PNG, WebP, GIF, BMP or TIFF image was expected");
}

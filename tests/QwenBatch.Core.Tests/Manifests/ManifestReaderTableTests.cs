using QwenBatch.Manifests;

namespace QwenBatch.Core.Tests.Manifests;

/// <summary>Good and bad manifests of each format with their exact errors and lines.</summary>
public sealed class ManifestReaderTableTests : IDisposable
{
    private readonly ManifestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<string, string, int, string> BadManifests => new()
    {
        // file, text, expected job count, expected "line|field|message" of every error joined by " && "
        { "bad-size.csv", "id,prompt,images,size\nok,p,a.png,1024*1024\nbig,p,a.png,4096x100\n", 1, "3|size|'4096x100' is outside odirouter's range; expected each side from 512 to 2048 pixels" },
        { "bad-size-text.csv", "id,prompt,images,size\nx,p,a.png,big\n", 0, "2|size|'big' is not a size; expected WIDTH*HEIGHT such as 1024*1024" },
        { "bad-bool.csv", "id,prompt,images,watermark,prompt_extend\nx,p,a.png,maybe,YES\n", 0, "2|watermark|'maybe' is not a boolean; expected true/false, 1/0 or yes/no" },
        { "bad-format.csv", "id,prompt,images,output_format\nx,p,a.png,gif\n", 0, "2|output_format|'gif' is not an output format; expected jpeg, png, webp" },
        { "bad-provider.csv", "id,prompt,images,provider\nx,p,a.png,dalle\n", 0, "2|provider|'dalle' is not a provider; expected odirouter, wavespeed, simulator" },
        { "bad-negative.csv", $"id,prompt,images,negative_prompt\nx,p,a.png,{new string('n', 501)}\n", 0, "2|negative_prompt|is 501 characters; expected at most 500" },
        { "bad-image.csv", "id,prompt,images\nx,p,notes.png\n", 0, "2|images|'notes.png' is not an image by its bytes; expected JPG, PNG, BMP, TIFF, WEBP or GIF" },
        { "bad-quote.csv", "id,prompt,images\nok,p,a.png\nx,\"p,a.png\n", 1, "3||the file cannot be read as CSV from here" },
        { "bad.json", "[\n  {\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]},\n  {\"id\": \"b\", \"prompt\": \"\", \"images\": [\"a.png\"], \"n\": 9}\n]\n", 1,
            "3|prompt|is empty; expected the edit instruction && 3|n|'9' is not allowed; expected a whole number from 1 to 6" },
        { "shape.json", "{\"jobs\": [\n {\"id\": \"a\", \"prompt\": \"p\", \"images\": \"a.png\"},\n\n {\"id\": \"b\", \"prompt\": {\"x\": 1}, \"images\": [1]}\n]}", 1,
            "4|prompt|is a JSON object; expected a string, number or boolean && 4|images|has a JSON number; expected an array of image paths or URLs (strings)" },
        { "syntax.json", "[\n {\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]},\n {\"id\": \"b\" \"prompt\": \"p\"}\n]", 1, "3||the file is not valid JSON here" },
        { "dup.json", "[{\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]},\n{\"id\": \"a\", \"prompt\": \"q\", \"images\": [\"a.png\"]}]", 1, "2|id|'a' is already used on line 1; ids must be unique" },
        { "not-object.json", "[\"just a string\"]", 0, "1||is a JSON string; expected a job object such as {\"id\": \"…\", \"prompt\": \"…\", \"images\": [\"…\"]}" },
        { "bad.jsonl", "{\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]}\n\n{\"id\": \"b\", \"prompt\": \"p\", \"images\": [\"a.png\", \"a.png\", \"a.png\", \"a.png\"]}\n{oops}\n", 1,
            "3|images|has 4 image(s); expected 1 to 3, separated by '|' && 4||the line is not valid JSON" },
        { "seed.jsonl", "{\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"], \"seed\": -1}\n", 0, "1|seed|'-1' is not allowed; expected a whole number from 0 to 2147483647" },
        { "binary.csv", "id\0\u0001\u0002", 0, "1||the file is binary, not a text manifest; expected CSV, JSON or JSONL saved as UTF-8" },
        { "late-bad-defaults.json", "{\"jobs\": [\n {\"id\": \"a\", \"prompt\": \"p\"}\n],\n\"defaults\": {\"images\": [\"a.png\"], \"n\": 9}}", 0, "2|n|'9' is not allowed; expected a whole number from 1 to 6" },
        { "trailing.json", "[\n {\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]}\n]\n\nmore", 1, "5||the file is not valid JSON here" },
        { "jobs-twice.json", "{\"jobs\": [{\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]}],\n \"jobs\": []}", 1, "2|jobs|appears twice; expected one array of job objects" },
        { "unclosed.json", "{\"name\": \"x\",\n \"jobs\": [\n  {\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]},\n  {\"id\": \"b\", \"prompt\": \"p\", \"images\": [\"a.png\"]},\n  {\"id\": \"c\",\n", 2, "6||the file is not valid JSON here: Expected start of a property name or value, but instead reached end of data" },
        { "latin1.json", "[{\"id\": \"a\", \"prompt\": \"p\", \"images\": [\"a.png\"]},\n {\"id\": \"b\", \"prompt\": \"Caf\u00e9\", \"images\": [\"a.png\"]}]", 0, "2||the file is not UTF-8 text here; save the manifest as UTF-8" },
    };

    [Theory]
    [MemberData(nameof(BadManifests))]
    public void Read_BadManifest_ReportsExactlyTheseErrorsAndKeepsTheGoodJobs(string file, string text, int jobs, string expected)
    {
        var manifest = file == "latin1.json" ? ReadLatin1(file, text) : _folder.Read(file, text);

        manifest.IsValid.ShouldBeFalse();
        manifest.Jobs.Count.ShouldBe(jobs);
        var actual = manifest.Errors.Select(e => $"{e.Line}|{e.Field}|{e.Message}").ToList();
        var wanted = expected.Split(" && ").ToList();
        actual.Count.ShouldBe(wanted.Count, string.Join("\n", actual));
        for (var i = 0; i < wanted.Count; i++)
        {
            actual[i].ShouldStartWith(wanted[i]);
        }

        manifest.Errors.ShouldAllBe(e => e.File == file);
    }

    [Theory]
    [InlineData("good.csv", "ID,Prompt,Image1,image2,Size,N,Seed,Watermark,Output_Format,Provider,Output,locale\r\nx,\"say \"\"hi\"\", in {locale}\",a.png,https://h.example/b.jpg,1000X1000,2,7,yes,PNG,odirouter,x-{locale},de\r\n")]
    [InlineData("good.json", "{\"name\": \"spring\", \"defaults\": {\"size\": \"1000x1000\", \"n\": 2, \"seed\": 7, \"watermark\": true, \"output_format\": \"png\", \"provider\": \"odirouter\"},\n \"jobs\": [\n  {\"id\": \"x\", \"prompt\": \"say \\\"hi\\\", in {locale}\", \"images\": [\"a.png\", \"https://h.example/b.jpg\"], \"output\": \"x-{locale}\", \"locale\": \"de\"}\n]}")]
    [InlineData("good.jsonl", "{\"id\": \"x\", \"prompt\": \"say \\\"hi\\\", in {locale}\", \"images\": [\"a.png\", \"https://h.example/b.jpg\"], \"size\": \"1000*1000\", \"n\": 2, \"seed\": 7, \"watermark\": \"1\", \"output_format\": \"png\", \"provider\": \"odirouter\", \"output\": \"x-{locale}\", \"locale\": \"de\"}\n")]
    public void Read_GoodManifest_ReadsEveryFieldTheSameInEachFormat(string file, string text)
    {
        var manifest = _folder.Read(file, text);

        manifest.Errors.ShouldBeEmpty();
        var job = manifest.Jobs.ShouldHaveSingleItem();
        job.Key.ShouldBe("x");
        job.Provider.ShouldBe("odirouter");
        job.Spec.Prompt.ShouldBe("say \"hi\", in de");
        job.Spec.Images.ShouldBe([Path.Combine(_folder.Dir, "a.png"), "https://h.example/b.jpg"]);
        job.Spec.Size.ShouldBe("1008*1008");
        job.Spec.N.ShouldBe(2);
        job.Spec.Seed.ShouldBe(7);
        job.Spec.Watermark.ShouldBe(true);
        job.Spec.OutputFormat.ShouldBe("png");
        job.Spec.Output.ShouldBe("x-de");
        job.Spec.Variables.ShouldBe(new Dictionary<string, string> { ["locale"] = "de" });
        manifest.Warnings.ShouldHaveSingleItem().Message.ShouldBe("'1000" + (file.EndsWith(".csv", StringComparison.Ordinal) ? "X" : file.EndsWith(".json", StringComparison.Ordinal) ? "x" : "*") + "1000' is adjusted to 1008*1008; odirouter uses multiples of 16");
    }

    /// <summary>A tiny buffer makes every token of the streamed JSON reader cross a refill (and the buffer grow for each job).</summary>
    [Theory]
    [MemberData(nameof(BadManifests))]
    public void Read_JsonWithATinyReadBuffer_GivesTheSameJobsAndErrors(string file, string text, int jobs, string expected)
    {
        if (!file.EndsWith(".json", StringComparison.Ordinal))
        {
            return;
        }

        var whole = file == "latin1.json" ? ReadLatin1(file, text) : _folder.Read(file, text);
        var tiny = ManifestReader.Read(Path.Combine(_folder.Dir, file), new ManifestOptions { JsonBufferSize = 16 });

        tiny.Jobs.Count.ShouldBe(jobs);
        tiny.Jobs.Select(j => (j.Line, j.Key, j.Spec.Prompt)).ShouldBe(whole.Jobs.Select(j => (j.Line, j.Key, j.Spec.Prompt)));
        tiny.Errors.ShouldBe(whole.Errors);
        tiny.Errors.Count.ShouldBe(expected.Split(" && ").Length);
    }

    [Fact]
    public void Read_JsonDefaultsAfterTheJobs_ApplyToEveryJob()
    {
        var manifest = _folder.Read("late.json", """
            {
              "jobs": [
                {"id": "a", "prompt": "p"},
                {"id": "b", "prompt": "q", "n": 1, "images": ["small.png"]}
              ],
              // the defaults may come last
              "defaults": {"images": ["a.png"], "n": 2},
              "name": "late-defaults"
            }
            """);

        manifest.Errors.ShouldBeEmpty();
        manifest.Name.ShouldBe("late-defaults");
        manifest.Jobs.Select(j => (j.Line, j.Key, j.Spec.N, Path.GetFileName(j.Spec.Images.Single()))).ShouldBe([(3, "a", 2, "a.png"), (4, "b", 1, "small.png")]);
    }

    [Fact]
    public void Read_LargeJsonManifest_StreamsWithExactLinesAcrossBufferRefills()
    {
        // 4,000 jobs of five lines each (~600 KB, many times the read buffer); job 3,777 is broken on its own line.
        var text = new System.Text.StringBuilder("\uFEFF{\"name\": \"big\",\n\"jobs\": [\n");
        for (var i = 1; i <= 4000; i++)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"  {{\n    \"id\": \"job-{i}\",\n    \"prompt\": \"{(i == 3777 ? "" : $"edit {i} {new string('x', 60)}")}\",\n    \"images\": [\"a.png\"]\n  }}{(i < 4000 ? "," : "")}\n");
        }

        text.Append("],\n\"defaults\": {\"n\": 3}}\n");

        var manifest = _folder.Read("big.json", text.ToString());

        manifest.Jobs.Count.ShouldBe(3999);
        manifest.Jobs[0].Line.ShouldBe(3);
        manifest.Jobs[^1].Line.ShouldBe(3 + (3999 * 5));
        manifest.Jobs.ShouldAllBe(j => j.Spec.N == 3);
        manifest.Errors.ShouldHaveSingleItem().ShouldBe(new ManifestError("big.json", 3 + (3776 * 5), "prompt", "is empty; expected the edit instruction"));
    }

    private Manifest ReadLatin1(string file, string text)
    {
        var path = Path.Combine(_folder.Dir, file);
        File.WriteAllBytes(path, System.Text.Encoding.Latin1.GetBytes(text));
        return ManifestReader.Read(path);
    }

    [Fact]
    public void Read_SameJobsInCsvJsonAndJsonl_CountTheSame()
    {
        var csv = _folder.Read("same.csv", "id,prompt,images,n\na,p1,a.png,1\nb,p2,a.png|a.png,2\nc,p3,a.png,3\n");
        var json = _folder.Read("same.json", "[{\"id\":\"a\",\"prompt\":\"p1\",\"images\":[\"a.png\"],\"n\":1},{\"id\":\"b\",\"prompt\":\"p2\",\"images\":[\"a.png\",\"a.png\"],\"n\":2},{\"id\":\"c\",\"prompt\":\"p3\",\"images\":[\"a.png\"],\"n\":3}]");
        var jsonl = _folder.Read("same.jsonl", "{\"id\":\"a\",\"prompt\":\"p1\",\"images\":[\"a.png\"],\"n\":1}\n{\"id\":\"b\",\"prompt\":\"p2\",\"images\":\"a.png|a.png\",\"n\":2}\n{\"id\":\"c\",\"prompt\":\"p3\",\"images\":[\"a.png\"],\"n\":3}\n");

        foreach (var manifest in new[] { csv, json, jsonl })
        {
            manifest.IsValid.ShouldBeTrue(string.Join("\n", manifest.Errors));
            manifest.Jobs.Count.ShouldBe(3);
        }

        json.Jobs.Select(j => j.Spec).ShouldBe(csv.Jobs.Select(j => j.Spec), new SpecComparer());
        jsonl.Jobs.Select(j => j.Spec).ShouldBe(csv.Jobs.Select(j => j.Spec), new SpecComparer());
    }

    [Fact]
    public void Read_TwoJobsTimesThreeLocales_ExpandsToSixJobsWithVariablesFilledIn()
    {
        var manifest = _folder.Read("loc.json", """
            {"name": "banners", "defaults": {"images": ["a.png"]},
             "jobs": [
              {"id": "hero-{locale}", "prompt": "Replace 'Summer Sale' with '{headline}'", "output": "hero/{locale}",
               "matrix": [{"locale": "de-DE", "headline": "Sommer"}, {"locale": "fr-FR", "headline": "Été"}, {"locale": "it-IT", "headline": "Estate"}]},
              {"id": "side", "prompt": "Translate to {locale}", "negative_prompt": "no {locale} flags",
               "matrix": [{"locale": "de-DE"}, {"locale": "fr-FR"}, {"locale": "it-IT"}]}
             ]}
            """);

        manifest.Errors.ShouldBeEmpty();
        manifest.Name.ShouldBe("banners");
        manifest.Jobs.Count.ShouldBe(6);
        manifest.Jobs.Select(j => j.Key).ShouldBe(["hero-de-DE", "hero-fr-FR", "hero-it-IT", "side-1", "side-2", "side-3"]);
        manifest.Jobs[1].Spec.Prompt.ShouldBe("Replace 'Summer Sale' with 'Été'");
        manifest.Jobs[1].Spec.Output.ShouldBe("hero/fr-FR");
        manifest.Jobs[1].Line.ShouldBe(3);
        manifest.Jobs[5].Spec.NegativePrompt.ShouldBe("no it-IT flags");
        manifest.Jobs[5].Spec.Variables.ShouldBe(new Dictionary<string, string> { ["locale"] = "it-IT" });
        manifest.Jobs[5].Line.ShouldBe(5);
    }

    [Fact]
    public void Read_ForeignExportWithMapAndPromptTemplate_UsesTheirColumns()
    {
        var options = new ManifestOptions
        {
            PromptTemplate = "White background, keep the {Title} unchanged",
            FieldMap = ManifestOptions.ParseMap("id=Handle,images=Image Src").Map,
        };

        var manifest = _folder.Read("shop.csv", "Handle,Title,Image Src,Vendor\nmug,Red Mug,https://cdn.example/mug.jpg,Acme\n", options);

        manifest.Errors.ShouldBeEmpty();
        var job = manifest.Jobs.ShouldHaveSingleItem();
        job.Key.ShouldBe("mug");
        job.Spec.Prompt.ShouldBe("White background, keep the Red Mug unchanged");
        job.Spec.Images.ShouldBe(["https://cdn.example/mug.jpg"]);
        job.Spec.Variables.ShouldBe(new Dictionary<string, string> { ["Title"] = "Red Mug", ["Vendor"] = "Acme" });
    }

    [Theory]
    [InlineData("id=", "--map: 'id=' is not a mapping; expected field=Column, such as \"id=Handle,images=Image Src\"")]
    [InlineData("colour=Color", "--map: 'colour' is not a manifest field")]
    public void ParseMap_Malformed_SaysWhatWasExpected(string map, string expected)
    {
        ManifestOptions.ParseMap(map).Error.ShouldStartWith(expected);
    }

    [Fact]
    public void Read_WaveSpeedLimits_AllowSeedMinusOneAndRefuseLargeSizes()
    {
        var manifest = _folder.Read("ws.csv", "id,prompt,images,seed,size\na,p,a.png,-1,1536*256\nb,p,a.png,0,2048*2048\n", new ManifestOptions { Provider = "wavespeed" });

        manifest.Jobs.ShouldHaveSingleItem().Spec.Seed.ShouldBe(-1);
        manifest.Errors.ShouldHaveSingleItem().ShouldBe(new ManifestError("ws.csv", 3, "size", "'2048*2048' is outside wavespeed's range; expected each side from 256 to 1536 pixels"));
    }

    [Fact]
    public void Read_WaveSpeedRowWithFieldsItsApiLacks_IsRefusedNamingEach()
    {
        var manifest = _folder.Read("ws-fields.csv", "id,prompt,images,prompt_extend,watermark,negative_prompt\na,p,a.png,false,,\nb,p,a.png,,true,blurry\nc,p,a.png,,,\n",
            new ManifestOptions { Provider = "wavespeed" });

        manifest.Errors.ShouldBe([
            new ManifestError("ws-fields.csv", 2, "prompt_extend", "is not taken by wavespeed; remove it for this provider"),
            new ManifestError("ws-fields.csv", 3, "watermark", "is not taken by wavespeed; remove it for this provider"),
            new ManifestError("ws-fields.csv", 3, "negative_prompt", "is not taken by wavespeed; remove it for this provider"),
        ]);
        manifest.Jobs.Select(j => j.Key).ShouldBe(["c"]);
    }

    [Fact]
    public void Read_WaveSpeedOutputJobs_ClashWithIdsEitherWay_AreReportedWithTheirLines()
    {
        // WaveSpeed makes one image per task, so n=2 is two jobs, a-1 and a-2: an id a-1 elsewhere would be the same job.
        const string Text = "id,prompt,images,n\na,p,a.png,2\na-1,p,a.png,1\nb-2,p,a.png,1\nb,p,a.png,3\nc,p,a.png,2\nc,p,a.png,1\nd,p,a.png,2\n";

        var manifest = _folder.Read("split.csv", Text, new ManifestOptions { Provider = "wavespeed" });

        manifest.Errors.Select(e => $"{e.Line}|{e.Field}|{e.Message}").ShouldBe([
            "3|id|'a-1' is already the job of one of line 2's outputs (its provider makes one image per task, so each output is a job of its own, named <id>-<k>); ids must be unique",
            "5|id|with n=3 on wavespeed (one image per task) the row is 3 jobs, 'b-1' to 'b-3'; 'b-2' is already used on line 4; ids must be unique",
            "7|id|'c' is already used on line 6; ids must be unique",
        ]);
        manifest.Jobs.Select(j => j.Key).ShouldBe(["a", "b-2", "c", "d"]);

        // A refused row takes no keys: b's outputs stay free, so b-1 and b-3 are still good ids after it.
        var after = _folder.Read("after.csv", "id,prompt,images,n\nb-2,p,a.png,1\nb,p,a.png,3\nb-1,p,a.png,1\nb-3,p,a.png,1\n", new ManifestOptions { Provider = "wavespeed" });
        after.Errors.ShouldHaveSingleItem().Line.ShouldBe(3);
        after.Jobs.Select(j => j.Key).ShouldBe(["b-2", "b-1", "b-3"]);

        // odirouter makes all n images in one task: the same rows are one job each, and no key is shared.
        _folder.Read("one-task.csv", Text).Errors.ShouldHaveSingleItem().Message.ShouldBe("'c' is already used on line 6; ids must be unique");
    }

    [Fact]
    public void Read_SmallImageAndLongPrompt_AreWarningsNotErrors()
    {
        var manifest = _folder.Read("warn.csv", $"id,prompt,images\na,{new string('w', 4000)},small.png\n");

        manifest.IsValid.ShouldBeTrue();
        manifest.Warnings.Select(w => (w.Line, w.Field, w.Message)).ShouldBe([
            (2, "prompt", "is about 1000 tokens; the provider truncates prompts beyond 800 tokens"),
            (2, "images", "'small.png' is 100x512 px; the provider recommends 384 to 3072 px per side"),
        ]);
    }

    [Fact]
    public void Read_DataUriOfAnImage_IsAccepted()
    {
        var png = Convert.ToBase64String(File.ReadAllBytes(Path.Combine(_folder.Dir, "a.png")));

        var manifest = _folder.Read("data.jsonl", $"{{\"prompt\": \"p\", \"images\": [\"data:image/png;base64,{png}\"]}}\n");

        manifest.Errors.ShouldBeEmpty();
        manifest.Jobs.ShouldHaveSingleItem().Key.ShouldBe("row-1");
    }

    private sealed class SpecComparer : IEqualityComparer<QwenBatch.Edits.EditSpec>
    {
        public bool Equals(QwenBatch.Edits.EditSpec? x, QwenBatch.Edits.EditSpec? y) =>
            x is not null && y is not null && x.Prompt == y.Prompt && x.Images.SequenceEqual(y.Images) && x.N == y.N && x.Size == y.Size && x.Seed == y.Seed;

        public int GetHashCode(QwenBatch.Edits.EditSpec obj) => obj.Prompt.GetHashCode(StringComparison.Ordinal);
    }
}

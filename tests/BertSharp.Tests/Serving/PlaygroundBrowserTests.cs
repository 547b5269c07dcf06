using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using BertSharp.Serving;
using Microsoft.AspNetCore.Builder;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Xunit;

namespace BertSharp.Tests.Serving;

/// <summary>
/// Needs headless Chromium from Debian's packages (<c>chromium</c>, <c>chromium-driver</c>): skipped with a message
/// when /usr/bin/chromium is absent, unless BERTSHARP_REQUIRE_BROWSER=1 (CI), where it runs and fails.
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public const string Chromium = "/usr/bin/chromium";
    public const string Driver = "/usr/bin/chromedriver";
    public static bool Required => Environment.GetEnvironmentVariable("BERTSHARP_REQUIRE_BROWSER") == "1";

    public BrowserFactAttribute()
    {
        if (Required) return;
        if (!File.Exists(Chromium) || !File.Exists(Driver))
            Skip = $"headless Chromium not installed ({Chromium}, {Driver}: apt-get install chromium chromium-driver); set BERTSHARP_REQUIRE_BROWSER=1 to fail instead";
        else if (TestAssets.MissingReason(ServeModels.Heads) is { } why && !TestAssets.Required)
            Skip = why;
    }
}

/// <summary>
/// The playground in a real browser: a Kestrel server on a free loopback port, headless Chromium through Selenium.
/// Each box is filled, submitted, and what the page shows is checked against the JSON API's answer for the same
/// input. With BERTSHARP_SCREENSHOT_DIR set, each box is saved there as serve-TASK.png (docs/images/ in the docs).
/// </summary>
public class PlaygroundBrowserTests
{
    [BrowserFact]
    public async Task EveryBoxShowsWhatTheApiAnswers()
    {
        var app = ServeApp.Build(ServeModels.TinyAll(o => o with { Port = 0 }));
        await app.StartAsync();
        try
        {
            var baseUrl = app.Urls.Single();
            using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
            async Task<JsonNode> Api(string path, object body)
            {
                using var resp = await http.PostAsJsonAsync(path, body);
                Assert.True(resp.IsSuccessStatusCode, $"{path}: {(int)resp.StatusCode}");
                return JsonNode.Parse(await resp.Content.ReadAsStringAsync())!;
            }

            var options = new ChromeOptions { BinaryLocation = BrowserFactAttribute.Chromium };
            options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1500,2200");
            using var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(BrowserFactAttribute.Driver)!, Path.GetFileName(BrowserFactAttribute.Driver));
            service.SuppressInitialDiagnosticInformation = true;
            service.HideCommandPromptWindow = true;
            using var driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
            var wait = new WebDriverWait(driver, TimeSpan.FromSeconds(30));
            driver.Navigate().GoToUrl(baseUrl);
            wait.Until(d => d.FindElement(By.Id("status")).Text.Contains("4 models served"));
            var shots = Environment.GetEnvironmentVariable("BERTSHARP_SCREENSHOT_DIR");

            IWebElement Run(string task, string button, Action? fill = null)
            {
                var box = driver.FindElement(By.Id("box-" + task));
                Assert.True(box.Displayed, $"the {task} box is hidden");
                fill?.Invoke();
                driver.FindElement(By.Id(button)).Click();
                var output = driver.FindElement(By.Id("out-" + task));
                wait.Until(_ => output.FindElements(By.CssSelector("*")).Count > 0 && output.Text != "…");
                Assert.Empty(output.FindElements(By.ClassName("error")));
                if (shots is not null)
                {
                    Directory.CreateDirectory(shots);
                    ((IJavaScriptExecutor)driver).ExecuteScript("arguments[0].scrollIntoView()", box);
                    ((ITakesScreenshot)box).GetScreenshot().SaveAsFile(Path.Combine(shots, $"serve-{task}.png"));
                }
                return output;
            }
            void Type(string id, string text)
            {
                var e = driver.FindElement(By.Id(id));
                e.Clear();
                e.SendKeys(text);
            }

            // model info
            var info = driver.FindElement(By.Id("info-body")).Text;
            Assert.Contains("BertForPreTraining", info);
            Assert.Contains("embeddings, fill-mask, nsp, tokenize", info);

            // fill-mask: one bar per prediction, in the API's order
            var fm = Run("fill-mask", "fm-run", () => Type("fm-text", "paris is the [MASK] of france."));
            var fmApi = await Api("/fill-mask", new { model = "tiny", input = "paris is the [MASK] of france.", top_k = 5 });
            Assert.Equal(fmApi["masks"]![0]!["predictions"]!.AsArray().Select(p => (string)p!["token"]!),
                fm.FindElements(By.CssSelector(".bar .label")).Select(e => e.Text));

            // NSP
            var nsp = Run("nsp", "nsp-run");
            var nspApi = await Api("/nsp", new { text_a = driver.FindElement(By.Id("nsp-a")).GetAttribute("value"), text_b = driver.FindElement(By.Id("nsp-b")).GetAttribute("value") });
            Assert.Equal(((double)nspApi["is_next_probability"]!).ToString("F4", CultureInfo.InvariantCulture), nsp.FindElements(By.CssSelector(".bar .num"))[0].Text);

            // classification
            var cls = Run("classify", "cls-run", () => Type("cls-pair", "Some men are playing a sport."));
            var clsApi = (await Api("/classify", new { input = "A soccer game with multiple males playing.", text_pair = "Some men are playing a sport." }))["data"]![0]!;
            Assert.StartsWith((string)clsApi["label"]!, cls.FindElement(By.Id("cls-top")).Text);
            Assert.Equal(3, cls.FindElements(By.CssSelector(".bar")).Count);

            // NER: one highlight per entity, with the entity's text
            const string nerText = "Peter Blackburn visited Brussels and met the European Commission.";
            var ner = Run("ner", "ner-run", () => Type("ner-text", nerText));
            var nerApi = (await Api("/ner", new { input = nerText }))["data"]![0]!["entities"]!.AsArray();
            var marks = ner.FindElements(By.TagName("mark"));
            Assert.Equal(nerApi.Count, marks.Count);
            for (int i = 0; i < marks.Count; i++)
            {
                Assert.Equal((string)nerApi[i]!["entity_group"]!, marks[i].GetAttribute("data-entity"));
                Assert.StartsWith((string)nerApi[i]!["word"]!, marks[i].Text);
            }

            // QA: the API's answer, highlighted in the context
            var qa = Run("qa", "qa-run");
            var qaApi = (await Api("/qa", new { question = "What is the capital of France?", context = "Paris is the capital and most populous city of France." }))["data"]![0]!;
            Assert.Equal((string)qaApi["answer"]!, qa.FindElement(By.Id("qa-answer")).Text);
            Assert.Equal((string)qaApi["answer"]!, qa.FindElement(By.CssSelector("mark.answer")).Text);

            // embeddings: the heat map is the cosine matrix of the API's vectors
            var sentences = new[] { "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.", "A man is riding a horse." };
            var emb = Run("embeddings", "emb-run");
            var vectors = (await Api("/v1/embeddings", new { input = sentences }))["data"]!.AsArray()
                .Select(d => d!["embedding"]!.AsArray().Select(x => (double)x!).ToArray()).ToArray();
            var cells = emb.FindElements(By.CssSelector("td"));
            Assert.Equal(16, cells.Count);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                {
                    var a = vectors[i];
                    var b = vectors[j];
                    double cos = a.Zip(b).Sum(p => p.First * p.Second) / Math.Sqrt(a.Sum(x => x * x) * b.Sum(x => x * x));
                    double shown = double.Parse(cells[i * 4 + j].GetAttribute("data-cos")!, CultureInfo.InvariantCulture);
                    Assert.True(Math.Abs(cos - shown) <= 1e-5, $"cell ({i},{j}): page {shown} vs {cos}");
                }
            if (shots is not null) ((ITakesScreenshot)driver).GetScreenshot().SaveAsFile(Path.Combine(shots, "serve-playground.png"));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}

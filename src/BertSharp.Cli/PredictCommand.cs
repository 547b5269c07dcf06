using System.CommandLine;
using System.Text.Json;
using BertSharp.Data.Tasks;
using BertSharp.Inference;
using BertSharp.Training.FineTuning;

namespace BertSharp.Cli;

/// <summary><c>bert predict</c>: a fine-tuned model's predictions for one input or a file. Logic in <see cref="FineTunedPredictor"/>.</summary>
public static class PredictCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Fine-tuned model directory (bert finetune's OUTPUT/best)", HelpName = "DIR", Required = true };
        var input = new Option<string?>("--input") { Description = "File of inputs: .txt (one per line; TAB before a second text / the context), .jsonl, .tsv, .csv", HelpName = "FILE" };
        var text = new Option<string?>("--text") { Description = "One text to classify or tag" };
        var pair = new Option<string?>("--text-pair") { Description = "The second text of a pair (with --text)" };
        var question = new Option<string?>("--question") { Description = "QA: the question (with --context)" };
        var context = new Option<string?>("--context") { Description = "QA: the passage to answer from" };
        var output = new Option<string?>("--output", "-o") { Description = "Write the predictions to FILE (written whole, then renamed)", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "One JSON object per input (JSON Lines)" };
        var maxLength = new Option<int>("--max-length") { Description = "Tokens per window (default 128)", DefaultValueFactory = _ => 128 };
        var stride = new Option<int?>("--stride") { Description = "Text classification/regression: split inputs longer than --max-length into windows overlapping by S tokens and average their logits (default: cut them)", HelpName = "S" };
        var threads = new Option<int?>("--threads") { Description = "Torch threads (default: all cores)" };
        var cmd = new Command("predict", "Predict with a fine-tuned model: label + scores, value, entities or answer span")
            { model, input, text, pair, question, context, output, json, maxLength, stride, threads };
        var engine = new ModelOptions();
        engine.AddEngineTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Runtime.SetThreads(parse.GetValue(threads));
            var file = parse.GetValue(input);
            string? t = parse.GetValue(text), q = parse.GetValue(question), c = parse.GetValue(context), p = parse.GetValue(pair);
            int given = (file is null ? 0 : 1) + (t is null ? 0 : 1) + (q is null && c is null ? 0 : 1);
            if (given != 1) throw new ArgumentException("give exactly one of --input FILE, --text TEXT [--text-pair TEXT] or --question Q --context C");
            if ((q is null) != (c is null)) throw new ArgumentException("--question and --context go together");
            if (p is not null && t is null) throw new ArgumentException("--text-pair needs --text");
            using var predictor = new FineTunedPredictor(parse.GetValue(model)!, parse.GetValue(maxLength), stride: parse.GetValue(stride),
                engine: engine.ParseEngine(parse), quantize: engine.ParseQuantization(parse));
            if (q is not null && predictor.Kind != TaskKind.QuestionAnswering)
                throw new ArgumentException($"--question/--context are for a question-answering model; this one is a {predictor.Architecture} (use --text)");
            if (t is not null && predictor.Kind == TaskKind.QuestionAnswering)
                throw new ArgumentException("this is a question-answering model: give --question Q --context C");
            var inputs = file is not null ? FineTunedPredictor.ReadInputs(file, predictor.Kind)
                : q is not null ? [new PredictInput(q, c)] : [new PredictInput(t!, p)];
            var preds = predictor.Predict(inputs);
            if (predictor.LastReport is { Truncated: > 0 } or { Windowed: > 0 }) Console.Error.WriteLine("bert: note: " + predictor.LastReport.Describe());
            var lines = new List<string>(preds.Count);
            for (int i = 0; i < preds.Count; i++)
            {
                if (parse.GetValue(json))
                {
                    if (inputs[i].Line > 0) preds[i]["line"] = inputs[i].Line;
                    lines.Add(preds[i].ToJsonString(Cli.Json));
                }
                else lines.Add(predictor.Format(preds[i]));
            }
            var outPath = parse.GetValue(output);
            if (outPath is null) foreach (var l in lines) Console.WriteLine(l);
            else
            {
                var tmp = outPath + ".tmp";
                File.WriteAllLines(tmp, lines);
                File.Move(tmp, outPath, overwrite: true);
            }
            return 0;
        }));
        return cmd;
    }
}

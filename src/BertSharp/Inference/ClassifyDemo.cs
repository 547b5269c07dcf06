using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Text;

namespace BertSharp.Inference;

/// <summary>Classic ML.NET trainers that <see cref="ClassifyDemo"/> fits on sentence embeddings.</summary>
public enum DemoClassifier
{
    /// <summary>Multinomial logistic regression, L-BFGS (<c>LbfgsMaximumEntropy</c>) — scikit-learn's LogisticRegression.</summary>
    Logistic,
    /// <summary>Multinomial logistic regression by SDCA (<c>SdcaMaximumEntropy</c>).</summary>
    Sdca,
    /// <summary>Gradient-boosted trees (<c>FastTree</c>, one-versus-all).</summary>
    FastTree,
    /// <summary>LightGBM gradient boosting (<c>LightGbm</c>, multiclass).</summary>
    LightGbm,
}

/// <summary>One labelled text.</summary>
public readonly record struct LabelledText(string Text, string Label);

/// <summary>Scores of one trained classifier on the test split.</summary>
public sealed record DemoResult(string Features, string Classifier, ClassificationReport Report, double FeatureSeconds, double TrainSeconds, int Train, int Test);

/// <summary>
/// picoBERT's second demo in .NET: frozen BERT sentence embeddings as features for a classic ML.NET classifier, and a
/// TF-IDF + logistic-regression baseline on the same split. All randomness (the sample, the split, the trainers)
/// follows the seed.
/// </summary>
public static class ClassifyDemo
{
    public static DemoClassifier ParseClassifier(string name) => name.Trim().ToLowerInvariant() switch
    {
        "logistic" => DemoClassifier.Logistic,
        "sdca" => DemoClassifier.Sdca,
        "fasttree" => DemoClassifier.FastTree,
        "lightgbm" => DemoClassifier.LightGbm,
        var other => throw new ArgumentException($"--classifier '{other}' is not supported (expected logistic, sdca, fasttree or lightgbm)"),
    };

    /// <summary>Labelled texts of a .jsonl/.csv/.tsv/.parquet file; a record with an empty label is an error.</summary>
    public static List<LabelledText> Read(string path, string textField, string labelField)
    {
        if (TextInputs.FormatOf(path) == TextInputFormat.Lines)
            throw new ArgumentException($"{path}: labelled data must be .jsonl, .csv, .tsv or .parquet (with --text-field and --label-field)");
        var list = new List<LabelledText>();
        foreach (var (text, label, line) in TextInputs.ReadRows(path, textField, labelField))
        {
            if (string.IsNullOrEmpty(label)) throw new FormatException($"{path}:{line}: empty label in \"{labelField}\"");
            list.Add(new LabelledText(text, label));
        }
        if (list.Count == 0) throw new FormatException($"{path}: no labelled records");
        return list;
    }

    /// <summary>Seeded Fisher–Yates shuffle (a copy).</summary>
    public static List<T> Shuffle<T>(IReadOnlyList<T> items, int seed)
    {
        var a = items.ToList();
        var rng = new Random(seed);
        for (int i = a.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }
        return a;
    }

    /// <summary>
    /// A seeded sample of <paramref name="n"/> records split into train and test: the test part is
    /// round(n × <paramref name="testRatio"/>) records (at least 1), the rest trains.
    /// </summary>
    public static (List<LabelledText> Train, List<LabelledText> Test) Split(IReadOnlyList<LabelledText> data, int n, double testRatio, int seed)
    {
        if (testRatio <= 0 || testRatio >= 1) throw new ArgumentException($"--test-ratio must be between 0 and 1 (got {testRatio})");
        var sample = Shuffle(data, seed).Take(Math.Min(n, data.Count)).ToList();
        int test = Math.Max(1, (int)Math.Round(sample.Count * testRatio));
        if (sample.Count - test < 1) throw new ArgumentException($"{sample.Count} records are too few to split into train and test");
        return (sample.Skip(test).ToList(), sample.Take(test).ToList());
    }

    sealed class Row
    {
        public string Label { get; set; } = "";
        public float[] Features { get; set; } = [];
    }

    sealed class TextRow
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
    }

    sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
    }

    /// <summary>Trains <paramref name="classifier"/> on the embeddings of the train texts and reports on the test texts.</summary>
    public static DemoResult RunEmbeddings(float[][] trainX, IReadOnlyList<string> trainY, float[][] testX, IReadOnlyList<string> testY,
        DemoClassifier classifier, int seed, double featureSeconds)
    {
        int dims = trainX.Length > 0 ? trainX[0].Length : 0;
        var ml = new MLContext(seed);
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dims);
        var train = ml.Data.LoadFromEnumerable(trainX.Select((x, i) => new Row { Features = x, Label = trainY[i] }), schema);
        var test = ml.Data.LoadFromEnumerable(testX.Select((x, i) => new Row { Features = x, Label = testY[i] }), schema);
        var toKey = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label");
        IEstimator<ITransformer> trainer = classifier switch
        {
            DemoClassifier.Logistic => Logistic(ml),
            DemoClassifier.Sdca => ml.MulticlassClassification.Trainers.SdcaMaximumEntropy("LabelKey", "Features"),
            DemoClassifier.FastTree => ml.MulticlassClassification.Trainers.OneVersusAll(ml.BinaryClassification.Trainers.FastTree(labelColumnName: "LabelKey", featureColumnName: "Features"), "LabelKey"),
            _ => ml.MulticlassClassification.Trainers.LightGbm("LabelKey", "Features"),
        };
        var pipeline = toKey.Append(trainer).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel", "PredictedLabel"));
        return Fit(ml, pipeline, train, test, testY, "embeddings", classifier.ToString().ToLowerInvariant(), featureSeconds, trainY.Count);
    }

    /// <summary>The baseline: ML.NET's text featurizer (word 1–2-grams, TF-IDF, L2-normalised; no char n-grams) + logistic regression.</summary>
    public static DemoResult RunTfIdf(IReadOnlyList<LabelledText> trainData, IReadOnlyList<LabelledText> testData, int seed)
    {
        var ml = new MLContext(seed);
        var train = ml.Data.LoadFromEnumerable(trainData.Select(t => new TextRow { Text = t.Text, Label = t.Label }));
        var test = ml.Data.LoadFromEnumerable(testData.Select(t => new TextRow { Text = t.Text, Label = t.Label }));
        var options = new TextFeaturizingEstimator.Options
        {
            WordFeatureExtractor = new WordBagEstimator.Options { NgramLength = 2, UseAllLengths = true, Weighting = NgramExtractingEstimator.WeightingCriteria.TfIdf },
            CharFeatureExtractor = null,
        };
        var pipeline = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label")
            .Append(ml.Transforms.Text.FeaturizeText("Features", options, "Text"))
            .Append(Logistic(ml))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel", "PredictedLabel"));
        return Fit(ml, pipeline, train, test, testData.Select(t => t.Label).ToList(), "tfidf", "logistic", 0, trainData.Count);
    }

    /// <summary>
    /// Multinomial logistic regression with an L2 penalty only, as scikit-learn's LogisticRegression (ML.NET's default
    /// adds an L1 weight of 1, which zeroes every weight of L2-normalised TF-IDF features).
    /// </summary>
    static IEstimator<ITransformer> Logistic(MLContext ml) => ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(
        new Microsoft.ML.Trainers.LbfgsMaximumEntropyMulticlassTrainer.Options
        {
            LabelColumnName = "LabelKey",
            FeatureColumnName = "Features",
            L1Regularization = 0,
            L2Regularization = 1,
        });

    static DemoResult Fit(MLContext ml, IEstimator<ITransformer> pipeline, IDataView train, IDataView test, IReadOnlyList<string> testY,
        string features, string classifier, double featureSeconds, int trainCount)
    {
        var clock = Stopwatch.StartNew();
        var model = pipeline.Fit(train);
        var predicted = ml.Data.CreateEnumerable<Prediction>(model.Transform(test), reuseRowObject: false).Select(p => p.PredictedLabel).ToList();
        double seconds = clock.Elapsed.TotalSeconds;
        return new DemoResult(features, classifier, new ClassificationReport(testY, predicted), featureSeconds, seconds, trainCount, testY.Count);
    }
}

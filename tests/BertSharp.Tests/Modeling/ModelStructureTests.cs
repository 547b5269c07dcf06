using BertSharp.Modeling;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

public class ModelStructureTests
{
    // Hugging Face's num_parameters() for bert-base-uncased's config (from the issue / HF itself).
    [Fact]
    public void BaseParameterCountsEqualHuggingFace()
    {
        var c = BertConfig.Preset("base");
        using (var m = new BertModel(c)) Assert.Equal(109_482_240, ModelUtils.CountParameters(m));
        using (var m = new BertForMaskedLM(c)) Assert.Equal(109_514_298, ModelUtils.CountParameters(m));
        using (var m = new BertForPreTraining(c)) Assert.Equal(110_106_428, ModelUtils.CountParameters(m));
    }

    [Fact]
    public void StateDictKeysAreHuggingFaceNames()
    {
        using var m = new BertForPreTraining(BertConfig.Preset("tiny"));
        var keys = m.state_dict().Keys.ToHashSet();
        foreach (var k in new[]
        {
            "bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
            "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias",
            "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.attention.self.value.bias",
            "bert.encoder.layer.0.attention.output.dense.weight", "bert.encoder.layer.0.attention.output.LayerNorm.weight",
            "bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.0.output.dense.bias",
            "bert.encoder.layer.1.output.LayerNorm.bias", "bert.pooler.dense.weight",
            "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight",
            "cls.predictions.decoder.weight", "cls.seq_relationship.weight", "cls.seq_relationship.bias",
        })
            Assert.Contains(k, keys);
        Assert.DoesNotContain(keys, k => k.Contains("dropout", StringComparison.Ordinal));
    }

    [Fact]
    public void DecoderIsTiedToWordEmbeddings()
    {
        using var m = new BertForPreTraining(BertConfig.Preset("tiny"));
        using (no_grad()) m.bert.embeddings.word_embeddings.weight![5, 3] = tensor(1.25f);
        Assert.Equal(1.25f, m.cls.predictions.decoder.weight![5, 3].item<float>());
    }

    [Fact]
    public void HfInitialisationStatistics()
    {
        var c = BertConfig.Preset("tiny");
        using var m = new BertForPreTraining(c);
        ModelUtils.InitWeights(m, c, seed: 1);
        var w = m.bert.encoder.layer[0].attention.self.query.weight!;
        Assert.InRange(w.std().item<float>(), 0.019, 0.021);
        Assert.Equal(0f, m.bert.encoder.layer[0].attention.self.query.bias!.abs().sum().item<float>());
        Assert.Equal(0f, m.bert.embeddings.word_embeddings.weight![c.PadTokenId].abs().sum().item<float>());
        Assert.Equal(1f, m.bert.embeddings.LayerNorm.weight!.mean().item<float>());
    }

    [Fact]
    public void PaddingDoesNotChangeRealTokens()
    {
        var c = BertConfig.Preset("tiny") with { VocabSize = 100 };
        using var m = new BertModel(c);
        ModelUtils.InitWeights(m, c, seed: 3);
        m.eval();
        using var _ = no_grad();
        var ids = tensor(new long[] { 2, 17, 33, 45, 3 }).unsqueeze(0);
        var padded = tensor(new long[] { 2, 17, 33, 45, 3, 0, 0 }).unsqueeze(0);
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 0, 0 }).unsqueeze(0);
        var a = m.forward(ids).LastHiddenState;
        var b = m.forward(padded, null, mask).LastHiddenState[.., ..5];
        Assert.True((a - b).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void ConfigRoundTripsAndKeepsUnknownKeys()
    {
        var json = """{"architectures":["BertForMaskedLM"],"vocab_size":99,"hidden_size":64,"num_hidden_layers":3,"num_attention_heads":4,"intermediate_size":256,"hidden_act":"gelu_new","layer_norm_eps":1e-7,"transformers_version":"4.5.1"}""";
        var c = BertConfig.Parse(json);
        Assert.Equal(99, c.VocabSize);
        Assert.Equal("gelu_new", c.HiddenAct);
        Assert.Equal(1e-7, c.LayerNormEps);
        var again = BertConfig.Parse(c.ToJson());
        Assert.Equal(c with { Extra = null }, again with { Extra = null });
        Assert.Contains("\"architectures\"", c.ToJson());
        Assert.Contains("\"transformers_version\": \"4.5.1\"", c.ToJson());
        // Only config.json keys are written: the derived head size is not one (HF would keep it as a stray attribute).
        Assert.DoesNotContain("HeadDim", c.ToJson());
    }

    [Theory]
    [InlineData("""{"hidden_size":100,"num_attention_heads":3}""", "multiple of num_attention_heads")]
    [InlineData("""{"hidden_act":"swish"}""", "hidden_act 'swish'")]
    [InlineData("""{"position_embedding_type":"relative_key"}""", "relative_key")]
    [InlineData("""{"vocab_size": "x"}""", "invalid config JSON")]
    public void BadConfigsAreClearErrors(string json, string expected)
    {
        var e = Assert.Throws<FormatException>(() => BertConfig.Parse(json, "my/config.json"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("my/config.json", e.Message);
    }
}

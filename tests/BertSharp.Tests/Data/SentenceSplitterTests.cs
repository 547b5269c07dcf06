using BertSharp.Data;
using Xunit;

namespace BertSharp.Tests.Data;

public class SentenceSplitterTests
{
    [Theory]
    [InlineData("Mr. Smith went to Washington. He arrived at 3.30 p.m. on Monday.", new[] { "Mr. Smith went to Washington.", "He arrived at 3.30 p.m. on Monday." })]
    [InlineData("Pi is about 3.14159. It is irrational!", new[] { "Pi is about 3.14159.", "It is irrational!" })]
    [InlineData("Dr. Jones met Prof. Lee in the U.S. Army base. They talked.", new[] { "Dr. Jones met Prof. Lee in the U.S. Army base.", "They talked." })]
    [InlineData("Use tools, e.g. hammers, i.e. heavy ones. Then stop.", new[] { "Use tools, e.g. hammers, i.e. heavy ones.", "Then stop." })]
    [InlineData("He said \"Stop.\" Then he left.", new[] { "He said \"Stop.\"", "Then he left." })]
    [InlineData("Wait... what happened? Nothing. \"Really?\" she asked.", new[] { "Wait... what happened?", "Nothing.", "\"Really?\" she asked." })]
    [InlineData("Sales rose 5%. 2020 was better. (It was.) Done", new[] { "Sales rose 5%.", "2020 was better.", "(It was.)", "Done" })]
    [InlineData("J. R. R. Tolkien wrote books. So did I. Really.", new[] { "J. R. R. Tolkien wrote books.", "So did I.", "Really." })]
    [InlineData("this is informal. and stays one sentence", new[] { "this is informal. and stays one sentence" })]
    [InlineData("It ended. . . Badly. Why?! Because.", new[] { "It ended. . .", "Badly.", "Why?!", "Because." })]
    [InlineData("First paragraph without stop\n\nSecond paragraph\nwith a line break.", new[] { "First paragraph without stop", "Second paragraph with a line break." })]
    public void Splits(string text, string[] expected) => Assert.Equal(expected, SentenceSplitter.Default.Split(text));

    [Fact]
    public void WikiTextSpacing()
    {
        var text = "In life , the lobsters are blue , only becoming \" lobster red \" on cooking . Mating occurs in the summer . " +
                   "He said \" it is over . \" Then it was . It is closely related to the American lobster , H. americanus .";
        Assert.Equal(new[]
        {
            "In life , the lobsters are blue , only becoming \" lobster red \" on cooking .",
            "Mating occurs in the summer .",
            "He said \" it is over . \"",
            "Then it was .",
            "It is closely related to the American lobster , H. americanus .",
        }, SentenceSplitter.Default.Split(text));
    }

    [Fact]
    public void EmptyAndWhitespace()
    {
        Assert.Empty(SentenceSplitter.Default.Split(""));
        Assert.Empty(SentenceSplitter.Default.Split("  \n\n \t "));
    }
}

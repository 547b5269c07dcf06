namespace BertSharp.Hub;

// The CLI maps FileNotFoundException / ArgumentException to exit code 2 (bad input) and everything else to 1, so
// the Hub errors derive from the matching framework types.

/// <summary>A repository, revision or file that the Hub (or, offline, the cache) does not have.</summary>
public sealed class HubNotFoundException(string message) : FileNotFoundException(message);

/// <summary>401/403: a private or gated repository, or a token that is not accepted.</summary>
public sealed class HubAuthException(string message) : UnauthorizedAccessException(message);

/// <summary>The Hub could not be reached or answered something unusable (5xx, missing headers, broken transfer).</summary>
public sealed class HubConnectionException(string message, Exception? inner = null) : IOException(message, inner);

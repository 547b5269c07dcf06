using System.CommandLine;
using BertSharp.Hub;

namespace BertSharp.Cli;

/// <summary><c>bert models download|list|rm</c>: the Hugging Face cache (shared with Python's huggingface_hub).</summary>
static class ModelsCommand
{
    public static Command Create()
    {
        var cmd = new Command("models", "Download Hub models into the Hugging Face cache, list it, remove from it");
        cmd.Subcommands.Add(Download());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Remove());
        return cmd;
    }

    static Option<string?> CacheDir() => new("--cache-dir") { Description = "Cache folder (default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)" };
    static Option<bool> Json() => new("--json") { Description = "Machine-readable JSON output" };

    static HubSettings Settings(string? cacheDir)
    {
        var s = HubSettings.FromEnvironment();
        return cacheDir is null ? s : s with { CacheRoot = cacheDir };
    }

    static string Size(long bytes) =>
        bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F1} GiB" : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):F1} MiB" :
        bytes >= 1L << 10 ? $"{bytes / 1024.0:F1} KiB" : $"{bytes} B";

    static Command Download()
    {
        var model = new Argument<string>("model") { Description = "ORG/NAME[@REVISION] (or a legacy NAME such as bert-base-uncased)" };
        var cache = CacheDir();
        var json = Json();
        var cmd = new Command("download", "Download a model's files (config, weights, tokenizer, sentence-transformers modules) into the cache") { model, cache, json };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var id = HubModelId.Parse(parse.GetValue(model)!);
            using var hub = new HubDownloader(Settings(parse.GetValue(cache)));
            var r = DownloadProgress.Run(p => hub.Download(id, p));
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    repo_id = r.RepoId, revision = r.Revision, commit = r.Commit, snapshot = r.SnapshotDir,
                    files = r.Files.Select(f => new { file = f.File, etag = f.Etag, size = f.Size, downloaded = f.Downloaded }),
                });
                return 0;
            }
            var fresh = r.Files.Where(f => f.Downloaded).ToList();
            Console.WriteLine($"{id} @ {r.Commit}: {r.Files.Count} files, {fresh.Count} downloaded ({Size(fresh.Sum(f => f.Size))}), " +
                              $"{r.Files.Count - fresh.Count} already cached");
            Console.WriteLine(r.SnapshotDir);
            return 0;
        }));
        return cmd;
    }

    static Command List()
    {
        var cache = CacheDir();
        var json = Json();
        var cmd = new Command("list", "List the cached repositories, their revisions (commit, refs) and sizes on disk") { cache, json };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var c = new HfCache(Settings(parse.GetValue(cache)).CacheRoot);
            var repos = c.Scan();
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new
                {
                    cache_dir = c.Root,
                    size_on_disk = repos.Sum(r => r.SizeOnDisk),
                    repos = repos.Select(r => new
                    {
                        repo_id = r.RepoId, path = r.Path, size_on_disk = r.SizeOnDisk, blobs = r.BlobCount, incomplete_bytes = r.IncompleteBytes,
                        revisions = r.Revisions.Select(v => new { commit = v.Commit, refs = v.Refs, files = v.Files, size_on_disk = v.SizeOnDisk, path = v.Path }),
                    }),
                });
                return 0;
            }
            if (repos.Count == 0)
            {
                Console.WriteLine($"no models in {c.Root}");
                return 0;
            }
            Console.WriteLine(c.Root);
            foreach (var r in repos)
            {
                Console.WriteLine($"{r.RepoId}  {Size(r.SizeOnDisk)}  {r.Revisions.Count} revision(s){(r.IncompleteBytes > 0 ? $", {Size(r.IncompleteBytes)} in unfinished downloads" : "")}");
                foreach (var v in r.Revisions)
                    Console.WriteLine($"  {v.Commit}  {(v.Refs.Count > 0 ? string.Join(",", v.Refs) : "-"),-12}  {v.Files.Count,3} files  {Size(v.SizeOnDisk)}");
            }
            Console.WriteLine($"{repos.Count} repositories, {Size(repos.Sum(r => r.SizeOnDisk))} on disk");
            return 0;
        }));
        return cmd;
    }

    static Command Remove()
    {
        var model = new Argument<string>("model") { Description = "ORG/NAME" };
        var revision = new Option<string?>("--revision") { Description = "Remove only this revision (a ref such as main, or a commit) and the blobs no other revision uses" };
        var cache = CacheDir();
        var json = Json();
        var cmd = new Command("rm", "Remove a repository (or one of its revisions) from the cache") { model, revision, cache, json };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var text = parse.GetValue(model)!;
            var id = HubModelId.Parse(text);
            if (text.Contains('@')) throw new ArgumentException($"give the revision with --revision, not '{text}'");
            var rev = parse.GetValue(revision);
            if (rev is not null) HubModelId.ValidateRevision(rev, "--revision");
            var d = new HfCache(Settings(parse.GetValue(cache)).CacheRoot).Delete(id.RepoId, rev);
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new { repo_id = d.RepoId, commits = d.Commits, blobs_removed = d.BlobsRemoved, bytes_freed = d.BytesFreed, repo_removed = d.RepoRemoved });
                return 0;
            }
            Console.WriteLine(d.RepoRemoved
                ? $"removed {d.RepoId} ({d.Commits.Count} revision(s), {Size(d.BytesFreed)} freed)"
                : $"removed {d.RepoId} revision {string.Join(", ", d.Commits)} ({d.BlobsRemoved} blob(s), {Size(d.BytesFreed)} freed)");
            return 0;
        }));
        return cmd;
    }
}

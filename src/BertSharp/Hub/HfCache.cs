namespace BertSharp.Hub;

/// <summary>One snapshot (commit) of a cached repository.</summary>
/// <param name="Files">paths relative to the snapshot folder, '/'-separated, sorted</param>
/// <param name="SizeOnDisk">bytes of the distinct blobs (or plain files) the snapshot's files point to</param>
public sealed record CachedRevision(string Commit, IReadOnlyList<string> Refs, IReadOnlyList<string> Files, long SizeOnDisk, string Path, DateTime LastModifiedUtc);

/// <summary>A repository in the cache.</summary>
/// <param name="SizeOnDisk">each blob counted once, however many snapshots point to it</param>
public sealed record CachedRepo(string RepoId, string Path, long SizeOnDisk, int BlobCount, IReadOnlyList<CachedRevision> Revisions, long IncompleteBytes);

/// <summary>What <see cref="HfCache.Delete"/> removed.</summary>
public sealed record CacheDeletion(string RepoId, IReadOnlyList<string> Commits, int BlobsRemoved, long BytesFreed, bool RepoRemoved);

/// <summary>
/// The huggingface_hub cache layout, read and written the way Python does it, so either side reuses the other's files:
/// <code>
/// ROOT/models--ORG--NAME/
///   blobs/&lt;etag&gt;                      file contents (etag = git sha1, or sha256 for LFS files)
///   blobs/&lt;etag&gt;.incomplete           a download in progress (resumed with a Range request)
///   refs/&lt;revision&gt;                   text file holding the commit hash the branch/tag pointed to
///   snapshots/&lt;commit&gt;/&lt;path&gt;       relative symlink to ../../blobs/&lt;etag&gt; (one more ../ per subfolder)
/// </code>
/// Where symlinks cannot be made (Windows without developer mode) the blob is copied into the snapshot instead,
/// as huggingface_hub does.
/// </summary>
public sealed class HfCache(string root)
{
    public string Root { get; } = System.IO.Path.GetFullPath(root);

    const string Prefix = "models--";

    /// <summary><c>ORG/NAME</c> → <c>models--ORG--NAME</c> (huggingface_hub's repo_folder_name).</summary>
    public static string RepoFolderName(string repoId) => Prefix + repoId.Replace("/", "--");

    public string RepoDir(string repoId) => System.IO.Path.Combine(Root, RepoFolderName(repoId));
    public string BlobPath(string repoId, string etag) => System.IO.Path.Combine(RepoDir(repoId), "blobs", etag);
    public string SnapshotDir(string repoId, string commit) => System.IO.Path.Combine(RepoDir(repoId), "snapshots", commit);
    public string RefPath(string repoId, string revision) => System.IO.Path.Combine(RepoDir(repoId), "refs", revision.Replace('/', System.IO.Path.DirectorySeparatorChar));

    /// <summary>The commit a revision means here: a 40-hex commit as is, else the content of <c>refs/&lt;revision&gt;</c>; null when unknown.</summary>
    public string? ResolveCommit(string repoId, string revision)
    {
        if (HubModelId.IsCommitHash(revision)) return revision;
        var p = RefPath(repoId, revision);
        if (!File.Exists(p)) return null;
        var commit = File.ReadAllText(p).Trim();
        return commit.Length > 0 && !commit.Contains('/') && !commit.Contains('\\') && !commit.Contains("..") ? commit : null;
    }

    /// <summary>Records that <paramref name="revision"/> points at <paramref name="commit"/> (no-op for a commit revision).</summary>
    public void WriteRef(string repoId, string revision, string commit)
    {
        if (revision == commit) return;
        var p = RefPath(repoId, revision);
        if (File.Exists(p) && File.ReadAllText(p).Trim() == commit) return;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        var tmp = p + $".tmp-{Guid.NewGuid():N}";
        File.WriteAllText(tmp, commit);
        File.Move(tmp, p, overwrite: true);
    }

    /// <summary>The snapshot path of a repository file (<c>snapshots/&lt;commit&gt;/&lt;file&gt;</c>).</summary>
    public string PointerPath(string repoId, string commit, string file)
    {
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(SnapshotDir(repoId, commit), file.Replace('/', System.IO.Path.DirectorySeparatorChar)));
        if (!full.StartsWith(SnapshotDir(repoId, commit) + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new InvalidDataException($"{repoId}: file name '{file}' points outside the snapshot folder");
        return full;
    }

    /// <summary>
    /// Makes <c>snapshots/&lt;commit&gt;/&lt;file&gt;</c> a relative symlink to <c>blobs/&lt;etag&gt;</c> (replacing what is there);
    /// copies the blob when the file system refuses symlinks.
    /// </summary>
    public string Link(string repoId, string commit, string file, string etag)
    {
        var pointer = PointerPath(repoId, commit, file);
        var blob = BlobPath(repoId, etag);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(pointer)!);
        if (File.Exists(pointer) || new FileInfo(pointer).LinkTarget is not null) File.Delete(pointer);
        var relative = System.IO.Path.GetRelativePath(System.IO.Path.GetDirectoryName(pointer)!, blob);
        try
        {
            File.CreateSymbolicLink(pointer, relative);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            var tmp = pointer + $".tmp-{Guid.NewGuid():N}";
            File.Copy(blob, tmp);
            File.Move(tmp, pointer, overwrite: true);
        }
        return pointer;
    }

    /// <summary>All cached model repositories, sorted by id (other folders in the root are ignored).</summary>
    public IReadOnlyList<CachedRepo> Scan()
    {
        if (!Directory.Exists(Root)) return [];
        var repos = new List<CachedRepo>();
        foreach (var dir in Directory.EnumerateDirectories(Root, Prefix + "*").Order(StringComparer.Ordinal))
            repos.Add(ScanRepo(System.IO.Path.GetFileName(dir)[Prefix.Length..].Replace("--", "/"), dir));
        return repos;
    }

    /// <summary>One cached repository, or null when it is not in the cache.</summary>
    public CachedRepo? Find(string repoId) => Directory.Exists(RepoDir(repoId)) ? ScanRepo(repoId, RepoDir(repoId)) : null;

    CachedRepo ScanRepo(string repoId, string dir)
    {
        var blobsDir = System.IO.Path.Combine(dir, "blobs");
        var blobSizes = new Dictionary<string, long>(StringComparer.Ordinal);
        long incomplete = 0;
        if (Directory.Exists(blobsDir))
            foreach (var f in new DirectoryInfo(blobsDir).EnumerateFiles())
                if (f.Name.EndsWith(".incomplete", StringComparison.Ordinal)) incomplete += f.Length;
                else blobSizes[f.FullName] = f.Length;

        var refsByCommit = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var refsDir = System.IO.Path.Combine(dir, "refs");
        if (Directory.Exists(refsDir))
            foreach (var f in Directory.EnumerateFiles(refsDir, "*", SearchOption.AllDirectories))
            {
                var name = System.IO.Path.GetRelativePath(refsDir, f).Replace('\\', '/');
                if (name.Contains(".tmp-")) continue;
                var commit = File.ReadAllText(f).Trim();
                if (!refsByCommit.TryGetValue(commit, out var list)) refsByCommit[commit] = list = [];
                list.Add(name);
            }

        var revisions = new List<CachedRevision>();
        long plainFiles = 0;
        var snapsDir = System.IO.Path.Combine(dir, "snapshots");
        if (Directory.Exists(snapsDir))
            foreach (var snap in new DirectoryInfo(snapsDir).EnumerateDirectories().OrderBy(d => d.Name, StringComparer.Ordinal))
            {
                var files = new List<string>();
                var blobs = new HashSet<string>(StringComparer.Ordinal);
                long size = 0;
                foreach (var f in snap.EnumerateFiles("*", SearchOption.AllDirectories))
                {
                    files.Add(System.IO.Path.GetRelativePath(snap.FullName, f.FullName).Replace('\\', '/'));
                    if (ResolveLink(f) is { } target)
                    {
                        if (blobs.Add(target) && blobSizes.TryGetValue(target, out var s)) size += s;
                    }
                    else
                    {
                        size += f.Length;
                        plainFiles += f.Length;
                    }
                }
                files.Sort(StringComparer.Ordinal);
                var refs = refsByCommit.TryGetValue(snap.Name, out var r) ? r.Order(StringComparer.Ordinal).ToList() : [];
                revisions.Add(new CachedRevision(snap.Name, refs, files, size, snap.FullName, snap.LastWriteTimeUtc));
            }
        return new CachedRepo(repoId, dir, blobSizes.Values.Sum() + plainFiles, blobSizes.Count, revisions, incomplete);
    }

    /// <summary>The full path a symlink points to (relative targets resolved against the link's folder), or null for a plain file.</summary>
    static string? ResolveLink(FileInfo f) =>
        f.LinkTarget is { } t ? System.IO.Path.GetFullPath(System.IO.Path.Combine(f.DirectoryName!, t)) : null;

    /// <summary>
    /// Removes a whole repository, or one revision (a ref name or commit): its snapshot, the refs that point to it and
    /// the blobs no other snapshot uses. Removing the last snapshot removes the repository folder.
    /// </summary>
    public CacheDeletion Delete(string repoId, string? revision = null)
    {
        var repo = Find(repoId) ?? throw new HubNotFoundException($"{repoId} is not in the Hugging Face cache at {Root}");
        if (revision is null)
        {
            Directory.Delete(repo.Path, recursive: true);
            return new CacheDeletion(repoId, repo.Revisions.Select(r => r.Commit).ToList(), repo.BlobCount, repo.SizeOnDisk + repo.IncompleteBytes, true);
        }
        var commit = ResolveCommit(repoId, revision);
        var target = repo.Revisions.FirstOrDefault(r => r.Commit == commit)
            ?? throw new HubNotFoundException(
                $"{repoId} has no cached revision '{revision}' (cached: {string.Join(", ", repo.Revisions.Select(r => r.Refs.Count > 0 ? $"{r.Commit} ({string.Join(", ", r.Refs)})" : r.Commit))})");
        if (repo.Revisions.Count == 1) return Delete(repoId);

        var keep = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in repo.Revisions.Where(r => r.Commit != target.Commit))
            foreach (var f in new DirectoryInfo(r.Path).EnumerateFiles("*", SearchOption.AllDirectories))
                if (ResolveLink(f) is { } t) keep.Add(t);
        var candidates = new DirectoryInfo(target.Path).EnumerateFiles("*", SearchOption.AllDirectories)
            .Select(ResolveLink).OfType<string>().Distinct().Where(t => !keep.Contains(t) && File.Exists(t)).ToList();
        long freed = 0;
        foreach (var b in candidates)
        {
            freed += new FileInfo(b).Length;
            File.Delete(b);
        }
        foreach (var f in new DirectoryInfo(target.Path).EnumerateFiles("*", SearchOption.AllDirectories))
            if (f.LinkTarget is null) freed += f.Length;
        Directory.Delete(target.Path, recursive: true);
        var noExist = System.IO.Path.Combine(repo.Path, ".no_exist", target.Commit); // huggingface_hub's record of absent files
        if (Directory.Exists(noExist)) Directory.Delete(noExist, recursive: true);
        var refsDir = System.IO.Path.Combine(repo.Path, "refs");
        foreach (var r in target.Refs) File.Delete(System.IO.Path.Combine(refsDir, r.Replace('/', System.IO.Path.DirectorySeparatorChar)));
        return new CacheDeletion(repoId, [target.Commit], candidates.Count, freed, false);
    }
}

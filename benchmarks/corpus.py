"""Deterministic corpora, the 5 % churn applied to them, and the hash walk that verifies restores.

Every byte comes from a seed: incompressible data is an AES-CTR keystream keyed by
``sha256(seed, stream name)`` (fast: the keystream is computed in C), text is a
random sequence of lines drawn from a pool of pseudo-English and source-like
lines (about 2x with lz4), logs are formatted line by line. The same seed and
size give the same tree, byte for byte, on every machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Bump when the generator changes, so a cached corpus built by an older harness is rebuilt.
GENERATOR_VERSION = 3

# A fixed, old modification time for generated files (2024-01-01T00:00:00Z), so the
# tree's metadata is as deterministic as its bytes.
EPOCH_NS = 1_704_067_200 * 1_000_000_000


# --------------------------------------------------------------------------- bytes


class Bytes:
    """Deterministic data of three kinds: random, text, logs (and sparse mixes of them)."""

    def __init__(self, seed: int, stream: str) -> None:
        key = hashlib.sha256(f"{seed}:{stream}:key".encode()).digest()
        self._cipher = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self.rng = random.Random(f"{seed}:{stream}")
        self._lines = _line_pool(seed)
        self._log_seq = 0

    def random(self, n: int) -> bytes:
        """``n`` incompressible bytes (an AES-CTR keystream)."""
        return self._cipher.update(bytes(n))

    def text(self, n: int) -> bytes:
        """``n`` bytes of text: lines drawn at random from the pool (compresses ~2x with lz4)."""
        if n <= 0:
            return b""
        parts: list[bytes] = []
        have = 0
        while have < n:
            # ~60 bytes per line on average; ask for a few more than needed.
            chosen = self.rng.choices(self._lines, k=max(8, (n - have) // 48 + 8))
            chunk = b"".join(chosen)
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)[:n]

    def sparse(self, n: int) -> bytes:
        """Mostly zeros with random islands (like a database file or a disk image)."""
        buf = bytearray(n)
        for _ in range(max(1, n // (16 * KiB))):
            size = self.rng.randint(64, 2 * KiB)
            at = self.rng.randrange(0, max(1, n - size))
            buf[at : at + size] = self.random(min(size, n - at))
        return bytes(buf)

    def log(self, n: int) -> bytes:
        """``n`` bytes of application log lines with increasing timestamps."""
        rng = self.rng
        levels = ("INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR")
        components = ("http", "db", "auth", "cache", "worker-1", "worker-2", "scheduler", "mailer")
        messages = (
            "request completed",
            "query executed",
            "cache miss",
            "cache hit",
            "token refreshed",
            "job scheduled",
            "job finished",
            "connection reset by peer",
            "slow query detected",
            "retrying after backoff",
        )
        paths = ("/api/v1/items", "/api/v1/users", "/login", "/static/app.js", "/healthz", "/api/v2/search")
        parts: list[str] = []
        have = 0
        while have < n:
            block = []
            for level, comp, msg, path in zip(
                rng.choices(levels, k=512),
                rng.choices(components, k=512),
                rng.choices(messages, k=512),
                rng.choices(paths, k=512),
                strict=True,
            ):
                self._log_seq += 1
                seq = self._log_seq
                secs, millis = divmod(seq * 37, 1000)
                day, rest = divmod(secs, 86400)
                hour, rest = divmod(rest, 3600)
                minute, second = divmod(rest, 60)
                block.append(
                    f"2024-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{hour:02d}:{minute:02d}:{second:02d}."
                    f"{millis:03d}Z {level:<5} [{comp}] {msg} req={rng.getrandbits(40):010x} "
                    f"path={path}/{seq % 9973} status={200 if level != 'ERROR' else 500} "
                    f"dur={rng.randint(1, 900)}ms\n"
                )
            text = "".join(block)
            parts.append(text)
            have += len(text)
        return "".join(parts).encode()[:n]

    def mixed(self, n: int, p_random: float, p_sparse: float = 0.0) -> bytes:
        """``n`` bytes in 64 KiB blocks, each random with probability ``p_random``, else text (or sparse)."""
        out: list[bytes] = []
        left = n
        while left > 0:
            size = min(64 * KiB, left)
            roll = self.rng.random()
            if roll < p_random:
                out.append(self.random(size))
            elif roll < p_random + p_sparse:
                out.append(self.sparse(size))
            else:
                out.append(self.text(size))
            left -= size
        return b"".join(out)


_POOLS: dict[int, list[bytes]] = {}


def _line_pool(seed: int) -> list[bytes]:
    """200,000 distinct lines (~12 MB: more than a compressor's window) of prose, code and config."""
    if seed in _POOLS:
        return _POOLS[seed]
    rng = random.Random(f"{seed}:lines")
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = list(range(26, 0, -1))
    vocab = ["".join(rng.choices(letters, weights=weights, k=rng.randint(2, 10))) for _ in range(5000)]
    cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(vocab))))
    lines: list[bytes] = []
    for i in range(200_000):
        words = rng.choices(vocab, cum_weights=cum, k=rng.randint(3, 14))
        style = i % 5
        if style == 0:
            line = f"def {words[0]}_{words[1]}({', '.join(words[2:5])}):"
        elif style == 1:
            indent = " " * (4 * rng.randint(1, 3))
            line = f"{indent}{words[0]} = {words[1]}({', '.join(words[2:])}) + {rng.randint(0, 9999)}"
        elif style == 2:
            line = f"{words[0]}.{words[1]}: {rng.randint(0, 1 << 20)}  # {' '.join(words[2:])}"
        else:
            line = " ".join(words).capitalize() + "."
        lines.append(line.encode() + b"\n")
    _POOLS[seed] = lines
    return lines


# --------------------------------------------------------------------------- the mixed corpus


@dataclass
class Category:
    """One kind of content in the corpus: how many entries and bytes of it."""

    name: str
    description: str
    files: int = 0
    bytes: int = 0


@dataclass
class CorpusInfo:
    """What was generated: written next to the corpus as ``corpus.json`` and copied into the results."""

    kind: str
    seed: int
    target_bytes: int
    generator: int = GENERATOR_VERSION
    total_bytes: int = 0
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    categories: list[Category] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CorpusInfo:
        cats = [Category(**c) for c in doc.pop("categories", [])]
        return cls(**doc, categories=cats)


def parse_size(text: str) -> int:
    """``2G``, ``200M``, ``512K``, ``1.5GiB``, ``1000000`` -> bytes (binary units)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": KiB, "M": MiB, "G": GiB, "T": 1024 * GiB}
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


class _Writer:
    """Writes files with deterministic mtimes and counts what it wrote per category."""

    def __init__(self, root: Path, info: CorpusInfo) -> None:
        self.root = root
        self.info = info
        self.cats = {c.name: c for c in info.categories}
        self.written = 0
        self._tick = 0

    def file(self, rel: str, data: bytes, category: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        self._tick += 1
        t = EPOCH_NS + self._tick * 1_000_000_000
        os.utime(path, ns=(t, t))
        cat = self.cats[category]
        cat.files += 1
        cat.bytes += len(data)
        self.written += len(data)

    def large(self, rel: str, size: int, category: str, produce: Any) -> None:
        """A big file written in 8 MiB blocks (``produce(n) -> bytes``) so memory stays small."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left > 0:
                n = min(8 * MiB, left)
                f.write(produce(n))
                left -= n
        t = EPOCH_NS
        os.utime(path, ns=(t, t))
        cat = self.cats[category]
        cat.files += 1
        cat.bytes += size
        self.written += size


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


SOURCE_EXTENSIONS = (".py", ".c", ".h", ".md", ".txt", ".json", ".yaml", ".rs", ".go", ".html")


def generate_mixed(root: Path, target: int, seed: int) -> CorpusInfo:
    """The realistic mix, about ``target`` bytes (see ``docs/benchmarks.md`` for the recipe).

    Shares of the target: 8 % small text/source files (0-64 KiB, thousands, nested
    folders), 40 % medium files (64 KiB-16 MiB) of mixed compressibility, 30 % four
    large files (two random like media or disk images, two log-like), 8 % exact
    duplicates of medium/large files, 12 % near-duplicates (copies with edits,
    insertions and appends, sharing large regions with their original), plus empty
    files, empty folders and symlinks (one dangling).
    """
    info = CorpusInfo(
        kind="mixed",
        seed=seed,
        target_bytes=target,
        categories=[
            Category("small", "text and source files, 0-64 KiB, nested folders"),
            Category("medium", "64 KiB-16 MiB, mixed compressibility (random / text / sparse blocks)"),
            Category("large-random", "large incompressible files (media, disk images)"),
            Category("large-log", "large log files (highly compressible)"),
            Category("duplicate", "exact copies of medium and large files"),
            Category("near-duplicate", "copies with edits, insertions, appends"),
            Category("empty", "empty files"),
        ],
    )
    w = _Writer(root, info)
    data = Bytes(seed, "mixed")
    rng = random.Random(f"{seed}:layout")
    root.mkdir(parents=True, exist_ok=True)

    # Small text/source files in a nested project-like tree.
    small_budget = int(target * 0.08)
    used = 0
    i = 0
    while used < small_budget or i < 50:
        project = f"projects/proj{i // 800:02d}"
        package = f"pkg{(i // 80) % 10}/mod{(i // 16) % 5}"
        ext = SOURCE_EXTENSIONS[i % len(SOURCE_EXTENSIONS)]
        size = _log_uniform(rng, 40, 64 * KiB)
        name = f"file_{i:05d}{ext}" if i % 97 else f"notes {i} ünïcødé{ext}"
        body = f"# {project}/{package}/{name}\n".encode() + data.text(size)
        w.file(f"{project}/{package}/{name}", body[:size], "small")
        used += size
        i += 1

    # Medium files of mixed compressibility.
    medium: list[tuple[str, int]] = []
    medium_budget = int(target * 0.40)
    used = 0
    i = 0
    profiles = ((0.0, 0.0), (0.25, 0.0), (0.5, 0.0), (0.75, 0.0), (1.0, 0.0), (0.1, 0.5))
    folders = ("documents", "photos", "data", "music", "archive/2023", "archive/2024")
    while used < medium_budget:
        size = min(_log_uniform(rng, 64 * KiB, 16 * MiB), medium_budget - used + 64 * KiB)
        p_random, p_sparse = profiles[i % len(profiles)]
        rel = f"{folders[i % len(folders)]}/set{i // 25:03d}/item_{i:04d}.bin"
        w.file(rel, data.mixed(size, p_random, p_sparse), "medium")
        medium.append((rel, size))
        used += size
        i += 1

    # Four large files: two random, two logs.
    large_each = max(MiB, int(target * 0.30) // 4)
    w.large("images/disk-a.img", large_each, "large-random", data.random)
    w.large("videos/holiday.mp4", large_each, "large-random", data.random)
    w.large("logs/app.log", large_each, "large-log", data.log)
    w.large("logs/archive/app-2023.log", large_each, "large-log", data.log)
    large = ["images/disk-a.img", "videos/holiday.mp4", "logs/app.log", "logs/archive/app-2023.log"]

    # Exact duplicates of medium (and one large) files.
    dup_budget = int(target * 0.08)
    used = 0
    candidates = [rel for rel, size in medium if size >= MiB] or [rel for rel, _ in medium]
    j = 0
    (root / "backup-copies").mkdir(parents=True, exist_ok=True)
    if dup_budget >= large_each:
        shutil.copyfile(root / large[0], root / "backup-copies/disk-a (copy).img")
        _count_copy(w, root / "backup-copies/disk-a (copy).img", "duplicate")
        used += large_each
    while used < dup_budget and candidates:
        src = candidates[rng.randrange(len(candidates))]
        dst = root / f"backup-copies/copy{j:03d}-{Path(src).name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / src, dst)
        used += _count_copy(w, dst, "duplicate")
        j += 1

    # Near-duplicates: a copy with a few overwritten regions, one insertion in the middle
    # (shifting everything after it: content-defined chunking must resynchronise) and an append.
    near_budget = int(target * 0.12)
    used = 0
    j = 0
    sources = [large[0], large[2]] + [rel for rel, size in medium if size >= 2 * MiB]
    while used < near_budget and sources:
        src = sources[j % len(sources)]
        blob = bytearray((root / src).read_bytes())
        want = near_budget - used
        if len(blob) > want:
            del blob[max(want, 64 * KiB) :]
        for _ in range(3):
            at = rng.randrange(0, max(1, len(blob) - 4 * KiB))
            blob[at : at + 4 * KiB] = data.random(4 * KiB)
        mid = len(blob) // 2
        blob[mid:mid] = data.text(rng.randint(100, 5000))
        blob += data.text(rng.randint(1000, 50_000))
        stem = Path(src).stem
        w.file(f"versions/v{j:02d}/{stem}-edited{Path(src).suffix}", bytes(blob), "near-duplicate")
        used += len(blob)
        j += 1

    # Empty files, empty folders, symlinks (relative, to files and folders; one dangling).
    for k in range(40):
        w.file(
            f"projects/proj00/pkg{k % 10}/__init__{k}.py" if k % 2 else f"data/empty/e{k:02d}", b"", "empty"
        )
    for k in range(5):
        (root / f"data/empty-dir-{k}/nested").mkdir(parents=True, exist_ok=True)
    links = 0
    small_files = sorted(p for p in _walk_files(root / "projects"))
    for k in range(38):
        target_file = small_files[rng.randrange(len(small_files))]
        link = root / f"links/link{k:02d}"
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(target_file, link.parent), link)
        links += 1
    os.symlink("../projects", root / "links/projects-dir")
    os.symlink("does/not/exist", root / "links/dangling")
    links += 2

    _finish(root, info, links)
    return info


def _count_copy(w: _Writer, path: Path, category: str) -> int:
    size = path.stat().st_size
    t = EPOCH_NS
    os.utime(path, ns=(t, t))
    cat = w.cats[category]
    cat.files += 1
    cat.bytes += size
    w.written += size
    return size


def _walk_files(top: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            yield Path(dirpath) / name


def _finish(root: Path, info: CorpusInfo, links: int) -> None:
    files = dirs = total = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    dirs += 1
                    stack.append(entry.path)
                elif entry.is_file():
                    files += 1
                    total += entry.stat(follow_symlinks=False).st_size
    info.files = files
    info.directories = dirs
    info.symlinks = links
    info.total_bytes = total


# --------------------------------------------------------------------------- the small-files corpus


def generate_smallfiles(root: Path, count: int, seed: int) -> CorpusInfo:
    """``count`` text files of 1-8 KiB, 500 per folder, two levels deep, each with unique content."""
    info = CorpusInfo(
        kind="smallfiles",
        seed=seed,
        target_bytes=0,
        categories=[Category("small", "text files of 1-8 KiB, 500 per folder")],
    )
    w = _Writer(root, info)
    data = Bytes(seed, "smallfiles")
    rng = random.Random(f"{seed}:smallfiles")
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        size = rng.randint(KiB, 8 * KiB)
        rel = f"d{i // 10_000:03d}/s{(i // 500) % 20:02d}/f{i:06d}.txt"
        body = f"file {i}\n".encode() + data.text(size)
        w.file(rel, body[:size], "small")
    info.target_bytes = w.written
    _finish(root, info, 0)
    return info


# --------------------------------------------------------------------------- cached generation


def ensure_corpus(root: Path, kind: str, amount: int, seed: int, log: Any = print) -> CorpusInfo:
    """Generate the corpus at ``root`` unless a matching one (same kind, amount, seed, generator) is there."""
    stamp = root.parent / f"{root.name}.json"
    if stamp.exists() and root.exists():
        doc = json.loads(stamp.read_text())
        if (
            doc.get("kind") == kind
            and doc.get("seed") == seed
            and doc.get("generator") == GENERATOR_VERSION
            and doc.get("requested") == amount
        ):
            doc.pop("requested")
            return CorpusInfo.from_json(doc)
    if root.exists():
        shutil.rmtree(root)
    stamp.unlink(missing_ok=True)
    log(f"generating {kind} corpus in {root} ...")
    info = generate_mixed(root, amount, seed) if kind == "mixed" else generate_smallfiles(root, amount, seed)
    stamp.write_text(json.dumps({**info.to_json(), "requested": amount}, indent=1))
    return info


# --------------------------------------------------------------------------- manifests (the hash walk)

# relative path -> ("f", size, sha256) | ("l", link target) | ("d",)
Manifest = dict[str, tuple[Any, ...]]


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest(root: Path, threads: int = 4) -> Manifest:
    """Every entry below ``root``: type, size and SHA-256 of files, symlink targets, folders.

    Reading every file also puts the tree in the page cache: the harness calls this
    before timing so every tool starts warm.
    """
    out: Manifest = {}
    files: list[tuple[str, str, int]] = []
    base = str(root)
    stack = [base]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                rel = os.path.relpath(entry.path, base)
                if entry.is_symlink():
                    out[rel] = ("l", os.readlink(entry.path))
                elif entry.is_dir():
                    out[rel] = ("d",)
                    stack.append(entry.path)
                elif entry.is_file():
                    files.append((rel, entry.path, entry.stat(follow_symlinks=False).st_size))
                else:
                    out[rel] = ("other",)
    # Largest first so the pool is not left waiting on one big file at the end.
    files.sort(key=lambda item: -item[2])
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for (rel, _path, size), digest in zip(
            files, pool.map(_digest, [p for _r, p, _s in files]), strict=True
        ):
            out[rel] = ("f", size, digest)
    return out


def _read_through(path: str) -> int:
    total = 0
    try:
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    except OSError:
        pass  # vanished or unreadable: the tool will meet it the same way
    return total


def warm(*roots: Path, threads: int = 4) -> int:
    """Read every regular file below ``roots`` (the bytes are discarded) and return the byte count.

    Some machines reclaim page-cache pages that were not touched for a while
    (this VM runs DAMON with a ``pageout`` scheme for pages idle ~60 s), so a
    tree read once at the start of a repetition is partly cold a few commands
    later, and whichever tool runs last would read from disk. The harness calls
    this right before every timed command, for every tool alike.
    """
    paths: list[str] = []
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    paths.append(path)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(_read_through, paths))


def compare(expected: Manifest, actual: Manifest, limit: int = 10) -> list[str]:
    """Human-readable differences (at most ``limit``); empty when the trees are identical."""
    problems: list[str] = []
    for rel in sorted(expected.keys() - actual.keys()):
        problems.append(f"missing: {rel}")
    for rel in sorted(actual.keys() - expected.keys()):
        problems.append(f"unexpected: {rel}")
    for rel in sorted(expected.keys() & actual.keys()):
        if tuple(expected[rel]) != tuple(actual[rel]):
            problems.append(f"differs: {rel}: expected {expected[rel][:2]}, found {actual[rel][:2]}")
    if len(problems) > limit:
        problems = [*problems[:limit], f"... and {len(problems) - limit} more"]
    return problems


def totals(m: Manifest) -> tuple[int, int]:
    """(regular files, bytes) of a manifest."""
    files = [v for v in m.values() if v[0] == "f"]
    return len(files), sum(int(v[1]) for v in files)


# --------------------------------------------------------------------------- churn


@dataclass
class ChurnStats:
    """What one application of the churn did."""

    overwritten: int = 0
    overwritten_bytes: int = 0
    inserted: int = 0
    inserted_bytes: int = 0
    appended: int = 0
    appended_bytes: int = 0
    created: int = 0
    created_bytes: int = 0
    deleted: int = 0
    deleted_bytes: int = 0

    @property
    def files_touched(self) -> int:
        return self.overwritten + self.inserted + self.appended + self.created + self.deleted

    @property
    def new_bytes(self) -> int:
        return self.overwritten_bytes + self.inserted_bytes + self.appended_bytes + self.created_bytes

    def to_json(self) -> dict[str, int]:
        return {**asdict(self), "files_touched": self.files_touched, "new_bytes": self.new_bytes}


class Churn:
    """A deterministic ~5 % change of a corpus that can be undone exactly.

    About 5 % of the regular files are touched and about 5 % of the corpus size is
    written: 2 % of the files get a region in the middle overwritten in place (and
    the largest random file, like a disk image, gets 1 % of the corpus size
    overwritten in 1 MiB regions), 1 % of the files get text inserted in the middle
    (written as a new file, like an editor saves), 1 % get an append (and the
    largest log grows by 1.5 % of the corpus size), new files worth 2.5 % of the
    corpus appear (1 % of the file count, half of them in a new folder), and 1 % of
    the files are deleted. The plan depends only on the seed and the file list, so
    every repetition applies the same change; ``revert`` puts back the original bytes
    (the stash holds moved-away originals, overwritten regions are kept in memory).
    """

    def __init__(self, root: Path, stash: Path, pristine: Manifest, seed: int) -> None:
        self.root = root
        self.stash = stash
        self.seed = seed
        self.pristine = pristine
        self._undo: list[tuple[Any, ...]] = []
        self.stats = ChurnStats()

    def apply(self) -> ChurnStats:
        if self._undo:
            raise RuntimeError("churn already applied")
        if self.stash.exists():
            shutil.rmtree(self.stash)
        self.stash.mkdir(parents=True)
        self.stats = ChurnStats()
        rng = random.Random(f"{self.seed}:churn")
        data = Bytes(self.seed, "churn")
        files = sorted((rel, int(v[1])) for rel, v in self.pristine.items() if v[0] == "f")
        nonempty = [(rel, size) for rel, size in files if size > 0]
        total = sum(size for _rel, size in files)
        count = len(files)
        pct = max(1, count // 100)
        texts = [(rel, size) for rel, size in nonempty if rel.startswith("projects/") or rel.endswith(".txt")]
        by_size = sorted(nonempty, key=lambda item: -item[1])
        big_random = next((rel for rel, _s in by_size if rel.endswith((".img", ".mp4"))), None)
        big_log = next((rel for rel, _s in by_size if rel.endswith(".log")), None)
        untouchable = {big_random, big_log}
        picked: set[str] = set()

        def pick(pool: list[tuple[str, int]], n: int) -> list[tuple[str, int]]:
            chosen: list[tuple[str, int]] = []
            candidates = [item for item in pool if item[0] not in picked and item[0] not in untouchable]
            rng.shuffle(candidates)
            for item in candidates[:n]:
                picked.add(item[0])
                chosen.append(item)
            return chosen

        # 1. Overwrite a region in the middle, in place (the inode stays, mtime changes).
        for rel, size in pick(nonempty, 2 * pct):
            n = max(1, min(size // 10, 256 * KiB))
            self._overwrite(rel, size // 2 - n // 2, data.random(n))
        if big_random is not None:
            size = int(self.pristine[big_random][1])
            region = min(MiB, max(4 * KiB, size // 64))
            regions = max(1, int(total * 0.01) // region)
            for k in range(regions):
                self._overwrite(big_random, (size * (k + 1)) // (regions + 1), data.random(region))
        # 2. Insert text in the middle, saved as a new file the way editors do.
        for rel, size in pick(texts or nonempty, pct):
            self._insert(rel, size // 2, data.text(rng.randint(200, 4000)))
        # 3. Appends, and the big log grows.
        for rel, size in pick(nonempty, pct):
            self._append(rel, data.text(max(100, min(size // 10, 64 * KiB))))
        if big_log is not None:
            self._append(big_log, data.log(max(4 * KiB, int(total * 0.015))))
        # 4. New files: 1 % of the count, 2.5 % of the bytes; half go to a new folder.
        budget = max(4 * KiB, int(total * 0.025))
        dirs = sorted({os.path.dirname(rel) for rel, _s in files if os.path.dirname(rel)}) or ["."]
        for k in range(pct):
            size = budget // pct
            folder = "projects/new-work" if k % 2 else dirs[rng.randrange(len(dirs))]
            blob = data.mixed(size, 0.5) if size > 64 * KiB else data.text(size)
            self._create(f"{folder}/churn-new-{k:04d}.dat", blob)
        # 5. Deletions.
        for rel, _size in pick(nonempty, pct):
            self._delete(rel)
        return self.stats

    def revert(self) -> None:
        """Undo ``apply`` in reverse order; the tree holds the pristine bytes again."""
        for op in reversed(self._undo):
            kind = op[0]
            path = self.root / op[1]
            if kind == "overwrite":
                with open(path, "r+b") as f:
                    f.seek(op[2])
                    f.write(op[3])
            elif kind == "append":
                os.truncate(path, op[2])
            elif kind in ("insert", "delete"):
                if kind == "insert":
                    path.unlink()
                os.rename(op[2], path)
            elif kind == "create":
                path.unlink()
            elif kind == "mkdir":
                path.rmdir()
        self._undo.clear()
        shutil.rmtree(self.stash, ignore_errors=True)

    def touched(self) -> set[str]:
        return {op[1] for op in self._undo if op[0] != "mkdir"}

    # -- the five operations, each recording how to undo itself

    def _overwrite(self, rel: str, at: int, blob: bytes) -> None:
        path = self.root / rel
        with open(path, "r+b") as f:
            f.seek(at)
            old = f.read(len(blob))
            f.seek(at)
            f.write(blob[: len(old)])
        self._undo.append(("overwrite", rel, at, old))
        self.stats.overwritten += 1
        self.stats.overwritten_bytes += len(old)

    def _insert(self, rel: str, at: int, blob: bytes) -> None:
        path = self.root / rel
        moved = self.stash / f"{len(self._undo):06d}"
        os.rename(path, moved)
        old = moved.read_bytes()
        path.write_bytes(old[:at] + blob + old[at:])
        self._undo.append(("insert", rel, moved))
        self.stats.inserted += 1
        self.stats.inserted_bytes += len(blob)

    def _append(self, rel: str, blob: bytes) -> None:
        path = self.root / rel
        size = path.stat().st_size
        with open(path, "ab") as f:
            f.write(blob)
        self._undo.append(("append", rel, size))
        self.stats.appended += 1
        self.stats.appended_bytes += len(blob)

    def _create(self, rel: str, blob: bytes) -> None:
        path = self.root / rel
        missing = []
        parent = path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            folder.mkdir()
            self._undo.append(("mkdir", os.path.relpath(folder, self.root)))
        path.write_bytes(blob)
        self._undo.append(("create", rel))
        self.stats.created += 1
        self.stats.created_bytes += len(blob)

    def _delete(self, rel: str) -> None:
        path = self.root / rel
        moved = self.stash / f"{len(self._undo):06d}"
        size = path.stat().st_size
        os.rename(path, moved)
        self._undo.append(("delete", rel, moved))
        self.stats.deleted += 1
        self.stats.deleted_bytes += size

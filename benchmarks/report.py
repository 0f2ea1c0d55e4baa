"""Turn raw runs into summaries, ratios, a markdown page and a PNG chart.

Conventions used everywhere:

* ``MiB/s`` is the size of the source tree (logical bytes of its regular files)
  divided by the wall time, also for the no-change and churn backups (which
  mostly do not read the bytes: that is the point of a files cache).
* A ratio ``vger/X`` compares medians. For backups and restores it is a
  throughput ratio (above 1: vger is faster); for the no-change and churn
  backups it is a time ratio (below 1: vger is faster); for memory and
  repository size it is a size ratio (below 1: vger uses less).
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

SCENARIO_TITLES = {
    "init": "init (not compared)",
    "initial": "initial backup (cold cache)",
    "nochange": "re-backup, nothing changed",
    "churn": "backup after 5 % churn",
    "restore": "full restore (verified)",
}
SCENARIO_ORDER = ("initial", "nochange", "churn", "restore", "init")
MiB = 1024 * 1024


def stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{tool: {scenario: {metric: {median, min, max, n}}}}`` over the successful runs."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    keys = {(r["tool"], r["scenario"]) for r in runs}
    for tool, scenario in sorted(keys):
        chosen = [r for r in runs if r["tool"] == tool and r["scenario"] == scenario]
        good = [r for r in chosen if r["ok"]]
        entry: dict[str, Any] = {"runs": len(chosen), "ok": len(good), "failed": len(chosen) - len(good)}
        for metric in ("wall_s", "cpu_s", "user_s", "sys_s", "maxrss_mib", "repo_bytes", "repo_disk_bytes"):
            entry[metric] = stats([float(r[metric]) for r in good if r.get(metric) is not None])
        # Throughput follows from the times (source size / median time; the slowest run gives
        # the minimum), so a throughput ratio is exactly the inverse of the time ratio.
        sizes = [float(r["source_bytes"]) for r in good if r.get("source_bytes")]
        wall = entry["wall_s"]
        entry["mib_per_s"] = None
        if sizes and wall and wall["min"] > 0:
            size_mib = statistics.median(sizes) / MiB
            entry["mib_per_s"] = {
                "median": size_mib / wall["median"],
                "min": size_mib / wall["max"],
                "max": size_mib / wall["min"],
                "n": wall["n"],
            }
        out.setdefault(tool, {})[scenario] = entry
    return out


def _median(summary: dict[str, Any], tool: str, scenario: str, metric: str) -> float | None:
    entry = summary.get(tool, {}).get(scenario, {}).get(metric)
    return None if entry is None else float(entry["median"])


# (label, scenario, metric, better-when text); the ratio is always vger's median over the other's.
RATIO_ROWS: dict[str, list[tuple[str, str, str, str]]] = {
    "mixed": [
        ("initial backup, throughput", "initial", "mib_per_s", "> 1"),
        ("re-backup, nothing changed, time", "nochange", "wall_s", "< 1"),
        ("backup after 5 % churn, time", "churn", "wall_s", "< 1"),
        ("full restore, throughput", "restore", "mib_per_s", "> 1"),
        ("peak RSS, initial backup", "initial", "maxrss_mib", "< 1"),
        ("peak RSS, restore", "restore", "maxrss_mib", "< 1"),
        ("CPU time (user+sys), initial backup", "initial", "cpu_s", "< 1"),
        ("repository size after initial backup", "initial", "repo_bytes", "< 1"),
        ("repository size after churn backup", "churn", "repo_bytes", "< 1"),
    ],
    "smallfiles": [
        ("small files: initial backup, throughput", "initial", "mib_per_s", "> 1"),
        ("small files: initial backup, time", "initial", "wall_s", "< 1"),
        ("small files: re-backup, nothing changed, time", "nochange", "wall_s", "< 1"),
        ("small files: peak RSS, initial backup", "initial", "maxrss_mib", "< 1"),
    ],
}
OTHERS = ("restic", "borg")


def ratios(suite: str, summary: dict[str, Any], subject: str = "vger") -> list[dict[str, Any]]:
    rows = []
    for label, scenario, metric, better in RATIO_ROWS.get(suite, []):
        row: dict[str, Any] = {"metric": label, "scenario": scenario, "field": metric, "better": better}
        mine = _median(summary, subject, scenario, metric)
        for other in OTHERS:
            theirs = _median(summary, other, scenario, metric)
            row[f"{subject}/{other}"] = mine / theirs if mine is not None and theirs else None
        rows.append(row)
    return rows


def refresh(results: dict[str, Any]) -> None:
    """Recompute every suite's summary and ratios from its raw runs (``--report-only``)."""
    for name, suite in results.get("suites", {}).items():
        suite["summary"] = summarize(suite["runs"])
        suite["ratios"] = ratios(name, suite["summary"])
        if "vger-zstd" in suite["summary"]:
            suite["ratios_zstd"] = ratios(name, suite["summary"], subject="vger-zstd")


# --------------------------------------------------------------------------- markdown


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _fmt_range(entry: dict[str, float] | None, digits: int = 1, scale: float = 1.0) -> str:
    if entry is None:
        return "n/a"
    med, lo, hi = entry["median"] / scale, entry["min"] / scale, entry["max"] / scale
    if entry.get("n", 1) <= 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def _fallback_restores(suite: dict[str, Any], tool: str) -> int:
    return sum(
        1
        for r in suite.get("runs", [])
        if r["tool"] == tool
        and r["scenario"] == "restore"
        and r["ok"]
        and r.get("snapshot") not in (None, "churn")
    )


def _cell(suite: dict[str, Any], subject: str, other: str, scenario: str, field: str) -> str:
    """One ratio, or why there is none (a failed tool), marked when a restore used the fallback snapshot."""
    summary = suite["summary"]
    for tool in (subject, other):
        entry = summary.get(tool, {}).get(scenario)
        if entry is not None and entry["ok"] == 0 and entry["runs"] > 0:
            return f"{tool} failed"
    mine = _median(summary, subject, scenario, field)
    theirs = _median(summary, other, scenario, field)
    if mine is None or not theirs:
        return "n/a"
    mark = " †" if scenario == "restore" and _fallback_restores(suite, subject) else ""
    spread = _rep_ratios(suite, subject, other, scenario, field)
    if len(spread) > 1 and field not in ("repo_bytes", "repo_disk_bytes"):
        return f"{mine / theirs:.2f}{mark} ({min(spread):.2f}-{max(spread):.2f})"
    return f"{mine / theirs:.2f}{mark}"


def _rep_ratios(suite: dict[str, Any], subject: str, other: str, scenario: str, field: str) -> list[float]:
    """The ratio within each repetition (the two runs minutes apart), for the spread."""
    by_rep: dict[int, dict[str, float]] = {}
    for run in suite.get("runs", []):
        if run["scenario"] == scenario and run["ok"] and run["tool"] in (subject, other) and run.get(field):
            by_rep.setdefault(run["rep"], {})[run["tool"]] = float(run[field])
    return [pair[subject] / pair[other] for pair in by_rep.values() if subject in pair and other in pair]


def ratio_table(results: dict[str, Any]) -> str:
    lines = [
        "| metric | better when | vger/restic | vger/borg |",
        "|---|---|---|---|",
    ]
    dagger = False
    for suite_name in ("mixed", "smallfiles"):
        suite = results.get("suites", {}).get(suite_name)
        if not suite:
            continue
        for label, scenario, field, better in RATIO_ROWS[suite_name]:
            cells = [_cell(suite, "vger", other, scenario, field) for other in OTHERS]
            dagger = dagger or any("†" in c for c in cells)
            lines.append(f"| {label} | {better} | {' | '.join(cells)} |")
            if field == "repo_bytes" and scenario == "initial" and "vger-zstd" in suite["summary"]:
                cells = [_cell(suite, "vger-zstd", other, scenario, field) for other in OTHERS]
                lines.append(f"| {label}, vger with zstd level 3 | {better} | {' | '.join(cells)} |")
    if dagger:
        lines += [
            "",
            "† vger's churn backup failed, so its restore was measured on its no-change snapshot (the "
            "unchanged tree; MiB/s is computed on that tree's size) and verified byte-identical against it.",
        ]
    return "\n".join(lines)


def detail_table(suite: dict[str, Any]) -> str:
    summary = suite["summary"]
    lines = [
        "| scenario | tool | wall s, median (min-max) | MiB/s | CPU s (user+sys) | peak RSS MiB | repository after | ok/runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    tools = suite["tool_order"]
    for scenario in SCENARIO_ORDER:
        for tool in tools:
            entry = summary.get(tool, {}).get(scenario)
            if entry is None:
                continue
            repo = entry["repo_bytes"]["median"] if entry.get("repo_bytes") else None
            lines.append(
                f"| {SCENARIO_TITLES[scenario]} | {tool} | {_fmt_range(entry['wall_s'], 2)} "
                f"| {_fmt_range(entry['mib_per_s'], 0)} | {_fmt_range(entry['cpu_s'], 1)} "
                f"| {_fmt_range(entry['maxrss_mib'], 0)} | {_fmt_bytes(repo)} | {entry['ok']}/{entry['runs']} |"
            )
    return "\n".join(lines)


def corpus_table(suite: dict[str, Any]) -> str:
    corpus = suite["corpus"]
    lines = ["| content | files | size |", "|---|---|---|"]
    for cat in corpus["categories"]:
        lines.append(
            f"| {cat['name']}: {cat['description']} | {cat['files']:,} | {_fmt_bytes(cat['bytes'])} |"
        )
    lines.append(
        f"| **total** ({corpus['directories']:,} folders, {corpus['symlinks']} symlinks) "
        f"| **{corpus['files']:,}** | **{_fmt_bytes(corpus['total_bytes'])}** |"
    )
    return "\n".join(lines)


def churn_table(churn: dict[str, int]) -> str:
    rows = [
        ("overwritten in place (middle of the file)", "overwritten", "overwritten_bytes"),
        ("text inserted in the middle (new inode)", "inserted", "inserted_bytes"),
        ("appended", "appended", "appended_bytes"),
        ("new files", "created", "created_bytes"),
        ("deleted", "deleted", "deleted_bytes"),
    ]
    lines = ["| change | operations | bytes |", "|---|---|---|"]
    for label, count, size in rows:
        lines.append(f"| {label} | {churn[count]:,} | {_fmt_bytes(churn[size])} |")
    lines.append(
        f"| **total** | **{churn['files_touched']:,}** | **{_fmt_bytes(churn['new_bytes'])}** written |"
    )
    return "\n".join(lines)


def _sentence(row: dict[str, Any], value: float, other: str) -> str:
    """``vger is 1.72x faster than borg``, ``vger's peak RSS is 2.61x restic's``, ..."""
    good = value > 1 if row["better"] == "> 1" else value < 1
    factor = value if value >= 1 else 1 / value
    if factor < 1.03:
        return f"vger and {other} are about even ({value:.2f})"
    field = row["field"]
    if field in ("mib_per_s", "wall_s"):
        return f"vger is {factor:.2f}x {'faster' if good else 'slower'} than {other}"
    if field == "cpu_s":
        return f"vger uses {factor:.2f}x {'less' if good else 'more'} CPU than {other}"
    if field == "maxrss_mib":
        return f"vger's peak RSS is {factor:.2f}x {'lower' if good else 'higher'} than {other}'s"
    return f"vger's repository is {factor:.2f}x {'smaller' if good else 'larger'} than {other}'s"


def _error_text(run: dict[str, Any]) -> str:
    """The failure message without run-specific paths, so equal failures group together."""
    text = str(run.get("error") or f"exit {run['returncode']}")
    text = re.sub(r"\$ \S+ .*?\| ", "", text)  # older results: the command line was part of the tail
    return re.sub(r"/\S*/rep\d+/", ".../", text)


def observations(results: dict[str, Any]) -> list[str]:
    """Plain sentences for each ratio: faster/slower, smaller/larger, by how much."""
    notes: list[str] = []
    for suite_name, suite in results.get("suites", {}).items():
        for row in suite.get("ratios", []):
            for other in OTHERS:
                value = row.get(f"vger/{other}")
                if value is not None:
                    notes.append(f"{suite_name}, {row['metric']}: {_sentence(row, value, other)}")
        failures: dict[tuple[str, str, str], int] = {}
        fallbacks: dict[str, int] = {}
        totals: dict[tuple[str, str], int] = {}
        for run in suite.get("runs", []):
            totals[(run["tool"], run["scenario"])] = totals.get((run["tool"], run["scenario"]), 0) + 1
            if not run["ok"]:
                key = (run["tool"], run["scenario"], _error_text(run))
                failures[key] = failures.get(key, 0) + 1
            elif run["scenario"] == "restore" and run.get("snapshot") not in (None, "churn"):
                fallbacks[run["tool"]] = fallbacks.get(run["tool"], 0) + 1
        for (tool, scenario, error), count in failures.items():
            notes.append(
                f"**{suite_name}: {tool} {SCENARIO_TITLES.get(scenario, scenario)} failed in {count} of "
                f"{totals[(tool, scenario)]} runs**: `{error[:400]}`"
            )
        for tool, count in fallbacks.items():
            notes.append(
                f"{suite_name}: {tool}'s restore ({count} runs) restored its no-change snapshot, because its churn "
                "backup had failed; it was verified against the unchanged tree"
            )
    return notes


METHOD = """\
* **One command**: `make bench` installs the `bench` extra (matplotlib), installs
  restic and borg from Debian's packages when they are missing (`apt-get install
  -y restic borgbackup`, after `apt-get update` if that fails; a tool that cannot
  be installed is skipped with a note), generates the corpora and runs every tool.
  Options: `python -m benchmarks.run --help` (`--size 200M`, `--reps 5`,
  `--files 200000`, `--tools vger,restic`, `--suite mixed`, `--keep` to keep the
  logs). `make bench-smoke` runs the same harness on a 20 MiB corpus
  (`tests/benchmarks/test_bench_smoke.py`, also part of `make test`), so it cannot rot.
* **Same data for everyone**: the corpus is generated from a seed (same seed and
  size, same bytes). The 5 % churn is applied once per repetition, after every
  tool's no-change backup, and reverted after the restores; a hash walk checks
  that every repetition sees the identical churned tree and that the revert gives
  back the pristine one.
* **Interleaved**: in each repetition every scenario is run by every tool before
  the next scenario starts, and the order of the tools rotates from one
  repetition to the next (vger, restic, borg; then restic, borg, vger; ...), so
  slow phases of a busy machine fall on all tools alike. Other work ran on the
  machine at the same time (see the load averages): compare the **ratios**, which
  come from runs minutes apart, more than the absolute numbers.
* **Warm page cache**: right before every timed command the harness reads what
  that command will read (the corpus before a backup, the tool's repository and
  cache before a restore), so every tool reads from memory and the numbers
  measure the tools, not the disk. Reading once per repetition was not enough:
  this VM pages out file pages left untouched for about 60 s (DAMON `pageout`),
  so whichever tool ran last in a repetition read a partly cold tree (200,000
  small files: 19.9 s first in the order, 27-28 s later). `sync` runs before
  each timed command so one tool's dirty pages are not flushed during the next
  one's run.
* **Caches**: each tool gets a fresh repository and a fresh cache folder per
  repetition (`VGER_CACHE_DIR`, `restic --cache-dir`, `BORG_BASE_DIR`), so the
  initial backup is cold; the no-change and churn backups and the restore reuse
  that cache, as they would on a user's machine (a files cache is what makes a
  re-backup fast).
* **Restores do not follow a deletion**: ext4 does not reuse an inode freed
  less than a minute ago and scans past every such one when it creates a file,
  so a restore started right after another tool's restored tree (20,000 files)
  was deleted spent most of its CPU there and ran 2-3x slower. Restored trees
  are therefore deleted together after the last restore of a repetition, and the
  next repetition's restores wait until a minute has passed since.
* **Restores count only when verified**: each restore goes to an empty folder and
  is compared with the source tree as it was backed up (every regular file's size
  and SHA-256, every symlink target, every folder) before its time is accepted.
* **Measured**: wall time (monotonic clock around the child), user+sys CPU and
  peak RSS (`ru_maxrss`) of the child from `os.wait4`, repository size (sum of the
  file sizes in the repository folder), MiB/s = source size / wall time. Each
  number is the median over the repetitions, with min-max in brackets.
"""


def markdown(results: dict[str, Any], chart: str | None) -> str:
    machine = results.get("machine", {})
    parts = [
        "# Benchmarks: vger, restic and borg on the same machine",
        "",
        "_Generated by `make bench` (`python -m benchmarks.run`); do not edit by hand, run it again._",
        f"_Raw numbers: [`benchmarks/results/latest.json`](../benchmarks/results/latest.json). "
        f"Last run: {results.get('generated', '?')}, `{results.get('command', 'python -m benchmarks.run')}`._",
        "",
        "## Summary",
        "",
        "Ratios of medians, vger over the other tool. Throughput ratios above 1, time "
        "and size ratios below 1 mean vger is ahead. In brackets: the lowest and highest of the "
        "ratios taken within each repetition (where the tools ran minutes apart), a measure of how "
        "much the machine's noise moves the ratio.",
        "",
        ratio_table(results),
        "",
    ]
    if results.get("note"):
        parts += [f"**Note on this run:** {results['note']}", ""]
    if chart:
        parts += [f"![vger, restic and borg compared]({chart})", ""]
    parts += ["## Machine", ""]
    parts += [
        f"* CPU: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; "
        f"RAM: {_fmt_bytes(machine.get('ram_bytes'))}; kernel {machine.get('kernel', '?')}; "
        f"Python {machine.get('python', '?')}",
        f"* work folder: `{machine.get('workdir', '?')}` on {machine.get('filesystem', '?')}",
    ]
    # tool -> settings, and version -> suites that ran it (a shared checkout can move between suites)
    settings: dict[str, str] = {}
    versions: dict[str, dict[str, list[str]]] = {}
    for suite_name, suite in results.get("suites", {}).items():
        for name, tool in suite.get("tools", {}).items():
            settings[name] = tool["settings"]
            versions.setdefault(name, {}).setdefault(tool["version"], []).append(suite_name)
    for name, setting in settings.items():
        seen = versions[name]
        if len(seen) == 1:
            version = next(iter(seen))
        else:
            version = "; ".join(f"{v} in `{'`, `'.join(s)}`" for v, s in seen.items())
        parts.append(f"* {name}: {version}; {setting}")
    for suite_name, suite in results.get("suites", {}).items():
        load_start = ", ".join(f"{x:.2f}" for x in suite.get("load_start", []))
        load_end = ", ".join(f"{x:.2f}" for x in suite.get("load_end", []))
        parts.append(
            f"* suite `{suite_name}`: {suite['started']} to {suite['finished']}, {suite['reps']} repetitions; "
            f"load average (1, 5, 15 min) {load_start} at the start, {load_end} at the end"
        )
    skipped: dict[str, str] = {}
    for suite in results.get("suites", {}).values():
        skipped.update(suite.get("skipped", {}))
    for name, why in skipped.items():
        parts.append(f"* **skipped {name}**: {why}")
    parts += ["", "## Method", "", METHOD]
    for suite_name, suite in results.get("suites", {}).items():
        corpus = suite["corpus"]
        if suite_name == "mixed":
            parts += [
                f"## Suite `mixed`: a realistic {_fmt_bytes(corpus['total_bytes'])} tree",
                "",
                f"Generated by `benchmarks/corpus.py` from seed {corpus['seed']} (requested size "
                f"{_fmt_bytes(corpus['target_bytes'])}): a project-like tree of small text and source files, "
                "medium files made of 64 KiB blocks that are random, text or sparse in six different mixes "
                "(from all text to all random), two large random files (a disk image, a video) and two large "
                "logs, exact copies of some of them, near-copies (a few 4 KiB regions overwritten, text "
                "inserted in the middle so everything after it shifts, an append), empty files and folders, "
                "file names with spaces and non-ASCII letters, and relative symlinks (to files, to a folder, "
                "one dangling).",
                "",
                corpus_table(suite),
                "",
            ]
            if suite.get("churn"):
                parts += [
                    "The churn (`Churn` in `benchmarks/corpus.py`), the same in every repetition: about 5 % of "
                    "the files touched and 5 % of the corpus size written. 2 % of the files get a region in the "
                    "middle overwritten in place and the disk image gets 1 % of the corpus size overwritten in "
                    "1 MiB regions; as many text files as 1 % of all files get text inserted in the middle (saved "
                    "as a new file, like an editor does); 1 % of the files get an append and the biggest log grows by 1.5 % of "
                    "the corpus size; new files worth 2.5 % appear (half in a new folder); 1 % of the files "
                    "are deleted.",
                    "",
                    churn_table(suite["churn"]),
                    "",
                ]
        else:
            parts += [
                f"## Suite `smallfiles`: {corpus['files']:,} small files",
                "",
                f"{corpus['files']:,} text files of 1-8 KiB ({_fmt_bytes(corpus['total_bytes'])}), "
                "500 per folder; initial backup (cold cache) and a re-backup with nothing changed.",
                "",
            ]
        parts += [detail_table(suite), ""]
    notes = observations(results)
    if notes:
        parts += ["## Observations (generated from the numbers above)", ""]
        parts += [f"* {n}" for n in notes]
        parts.append("")
    return "\n".join(parts)


# --------------------------------------------------------------------------- chart


def chart(results: dict[str, Any], path: Path) -> bool:
    """A grid of bar charts (median, min-max as error bars); False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels: list[tuple[str, str, str, str, float]] = [
        ("mixed", "initial", "mib_per_s", "initial backup, MiB/s (higher is better)", 1.0),
        ("mixed", "restore", "mib_per_s", "full restore, MiB/s (higher is better)", 1.0),
        ("mixed", "nochange", "wall_s", "re-backup, nothing changed, s (lower is better)", 1.0),
        ("mixed", "churn", "wall_s", "backup after 5 % churn, s (lower is better)", 1.0),
        ("mixed", "initial", "repo_bytes", "repository after initial backup, MiB", float(MiB)),
        ("mixed", "initial", "maxrss_mib", "peak RSS, initial backup, MiB", 1.0),
        ("smallfiles", "initial", "wall_s", "small files: initial backup, s (lower is better)", 1.0),
        ("smallfiles", "nochange", "wall_s", "small files: re-backup, s (lower is better)", 1.0),
    ]
    suites = results.get("suites", {})
    panels = [p for p in panels if p[0] in suites]
    if not panels:
        return False
    colors = {"vger": "#2b6cb0", "vger-zstd": "#63b3ed", "restic": "#dd6b20", "borg": "#38a169"}
    cols = 4 if len(panels) > 3 else len(panels)
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (suite_name, scenario, metric, title, scale) in zip(axes.flat, panels, strict=False):
        suite = suites[suite_name]
        names, meds, lows, highs, cols_ = [], [], [], [], []
        labels: list[str] = []
        for tool in suite["tool_order"]:
            scenario_entry = suite["summary"].get(tool, {}).get(scenario)
            if scenario_entry is None:
                continue
            entry = scenario_entry.get(metric)
            fallback = scenario == "restore" and _fallback_restores(suite, tool) > 0
            names.append(f"{tool} †" if fallback else tool)
            cols_.append(colors.get(tool, "#718096"))
            if entry is None:  # every run failed: an empty slot that says so
                meds.append(0.0)
                lows.append(0.0)
                highs.append(0.0)
                labels.append("failed")
                continue
            med = entry["median"] / scale
            meds.append(med)
            lows.append(med - entry["min"] / scale)
            highs.append(entry["max"] / scale - med)
            labels.append(f"{med:.0f}" if med >= 100 else f"{med:.3g}")
        ax.bar(names, meds, yerr=[lows, highs], color=cols_, capsize=4)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.tick_params(axis="y", labelsize=8)
        for i, (value, label) in enumerate(zip(meds, labels, strict=True)):
            ax.annotate(
                label,
                (i, value),
                ha="center",
                va="bottom",
                fontsize=7 if label != "failed" else 8,
                color="black" if label != "failed" else "#c53030",
                xytext=(0, 2),
                textcoords="offset points",
            )
    machine = results.get("machine", {})
    fig.suptitle(
        f"vger vs restic vs borg - {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores - "
        f"{results.get('generated', '')}",
        fontsize=10,
    )
    fallbacks = [
        name
        for name in ("vger", "vger-zstd")
        if "mixed" in suites and _fallback_restores(suites["mixed"], name)
    ]
    if fallbacks:
        fig.text(
            0.01,
            0.005,
            "† the churn backup failed: the restore shown is of the no-change snapshot",
            fontsize=8,
            color="#c53030",
        )
    fig.tight_layout(rect=(0, 0.02, 1, 1) if fallbacks else (0, 0, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

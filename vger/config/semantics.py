"""Rules that span several keys, which JSON Schema expresses badly or not at all.

They run only on a document that already passed the schema, so types and
shapes can be trusted here. Each rule yields :class:`Problem` objects with the
key path of the value to fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from vger.config.locations import KeyPath
from vger.config.problems import Problem, describe, suggest
from vger.config.schema import defaults_of

Data = Mapping[str, Any]


def source_label(entry: Any) -> str | None:
    """The label a source entry ends up with (None when it cannot have one: a schema problem)."""
    if isinstance(entry, str):
        return _base_name(entry)
    if "label" in entry:
        return str(entry["label"])
    if "path" in entry:
        return _base_name(str(entry["path"]))
    return None


def _base_name(path: str) -> str:
    # "/" and "~" have no base name; the path itself is then the clearest label.
    return os.path.basename(os.path.normpath(os.path.expanduser(path))) or path


def repository_label(entry: Mapping[str, Any]) -> str:
    """``label``, else the url as written."""
    return str(entry.get("label", entry["url"]))


def check(data: Data, core: Mapping[str, Any]) -> list[Problem]:
    """Every cross-key problem in ``data``; ``core`` supplies defaults (the core schema)."""
    return list(_check(data, core))


def _check(data: Data, core: Mapping[str, Any]) -> Iterator[Problem]:
    defs = core["$defs"]
    if "chunker" in data:
        yield from _chunker_sizes(data["chunker"], defaults_of(defs["chunker"]))
    repo_labels: dict[str, int] = {}
    for index, repo in enumerate(data["repositories"]):
        path: KeyPath = ("repositories", index)
        label = repository_label(repo)
        if label in repo_labels:
            where = "label" if "label" in repo else "url"
            yield Problem(
                (*path, where),
                f"expected a unique repository label, found '{label}' again "
                f"(also repositories[{repo_labels[label]}]); set a distinct `label`",
            )
        else:
            repo_labels[label] = index
        pack_defaults = defaults_of(defs["repository"])
        low = repo.get("min_pack_size", pack_defaults["min_pack_size"])
        high = repo.get("max_pack_size", pack_defaults["max_pack_size"])
        if low > high:
            yield Problem(
                (*path, "min_pack_size" if "min_pack_size" in repo else "max_pack_size"),
                f"expected min_pack_size <= max_pack_size, found {low} > {high}",
            )

    source_labels: dict[str, int] = {}
    for index, entry in enumerate(data["sources"]):
        path = ("sources", index)
        if isinstance(entry, Mapping):
            yield from _source_entry(entry, path, repo_labels)
        name = source_label(entry)
        if name is None:
            continue
        if name in source_labels:
            yield Problem(
                (*path, "label") if isinstance(entry, Mapping) and "label" in entry else path,
                f"expected a unique source label, found '{name}' again "
                f"(also sources[{source_labels[name]}]); give one of them a distinct `label` "
                "(a plain path is labelled with its base name)",
            )
        else:
            source_labels[name] = index

    schedule = data.get("schedule")
    if isinstance(schedule, Mapping) and "every" in schedule and "cron" in schedule:
        yield Problem(
            ("schedule", "cron"),
            "expected either `every` or `cron`, found both (they are exclusive)",
        )


def _chunker_sizes(block: Mapping[str, Any], defaults: Mapping[str, Any]) -> Iterator[Problem]:
    sizes = {key: block.get(key, defaults[key]) for key in ("min_size", "avg_size", "max_size")}
    if sizes["min_size"] <= sizes["avg_size"] <= sizes["max_size"]:
        return
    # Point at a key the user actually wrote: that is the one to change.
    culprit = next((key for key in ("min_size", "avg_size", "max_size") if key in block), "min_size")
    yield Problem(
        ("chunker", culprit),
        "expected min_size <= avg_size <= max_size, found "
        f"{sizes['min_size']} / {sizes['avg_size']} / {sizes['max_size']} (defaults fill unset sizes)",
    )


def _source_entry(
    entry: Mapping[str, Any], path: KeyPath, repo_labels: Mapping[str, int]
) -> Iterator[Problem]:
    has_path, has_paths = "path" in entry, "paths" in entry
    if has_path and has_paths:
        yield Problem((*path, "paths"), "expected either `path` or `paths`, found both")
    elif not has_path and not has_paths:
        if not (entry.get("command_dumps") or entry.get("dumps")):
            yield Problem(
                (*path, "path"), "expected `path` (one directory) or `paths` (several), found neither"
            )
        elif "label" not in entry:
            # A dumps-only source (databases, no files) has no path to take a label from.
            yield Problem((*path, "label"), "expected a `label` (required without `path`), found nothing")
    elif has_paths and "label" not in entry:
        yield Problem((*path, "label"), "expected a `label` (required with `paths`), found nothing")
    for index, name in enumerate(entry.get("repos", ())):
        if name not in repo_labels:
            yield Problem(
                (*path, "repos", index),
                f"expected the label of a configured repository ({', '.join(repo_labels)}), "
                f"found {describe(name)}{suggest(name, repo_labels)}",
            )
    seen: dict[str, int] = {}
    for index, dump in enumerate(entry.get("command_dumps", ())):
        name = dump["name"]
        if name in seen:
            yield Problem(
                (*path, "command_dumps", index, "name"),
                f"expected a unique dump name within this source, found '{name}' again "
                f"(also command_dumps[{seen[name]}])",
            )
        else:
            seen[name] = index

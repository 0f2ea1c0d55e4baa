"""The vger benchmark harness: vger against restic and borg on the same machine.

Glossary:

corpus
    A deterministic tree of files (``corpus.py``) generated from a seed: the same
    seed and size give the same bytes on every machine.
suite
    One corpus plus the scenarios timed on it: ``mixed`` (the realistic mix,
    default 2 GiB) and ``smallfiles`` (many 1-8 KiB files).
scenario
    One timed command of a tool: ``initial`` backup (cold files cache), ``nochange``
    re-backup, ``churn`` backup after the deterministic 5 % change, ``restore``.
tool
    A backup program under test with fixed settings (``tools.py``): ``vger``,
    ``vger-zstd``, ``restic``, ``borg``.
repetition
    One pass of every scenario by every tool; the tools take turns in a rotating
    order so machine noise falls on all of them alike.

Run it with ``make bench`` or ``python -m benchmarks.run --help``; the results
land in ``benchmarks/results/latest.json`` and ``docs/benchmarks.md``.
"""

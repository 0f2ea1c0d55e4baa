#!/usr/bin/env python3
"""A scripted stand-in for ``mongodump --archive`` and ``mongorestore --archive``.

MongoDB's tools cannot be installed on the machines this project is tested
on, so the plugin's tests put this script on PATH under both names. It keeps
the "server" as a folder (``$MONGO_STANDIN_DATA/<db>/<collection>.json``)
and speaks the command-line contract the plugin relies on: the options it
passes, an archive on stdout / stdin, ``--db``, ``--drop``,
``--nsFrom/--nsTo`` renaming, ``--config`` with a password, a non-zero exit
and a message on stderr for a database that does not exist. The archive
format is its own (JSON lines), not MongoDB's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

DATA = Path(os.environ["MONGO_STANDIN_DATA"])
LOG = os.environ.get("MONGO_STANDIN_LOG")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archive", action="store_true")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--username")
    parser.add_argument("--authenticationDatabase")
    parser.add_argument("--config")
    parser.add_argument("--db")
    parser.add_argument("--drop", action="store_true")
    parser.add_argument("--nsFrom")
    parser.add_argument("--nsTo")
    args = parser.parse_args(argv)
    if not args.archive:
        parser.error("this stand-in only speaks --archive")
    return args


def check_password(args: argparse.Namespace) -> None:
    if args.username is None:
        return
    password = None
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "password":
                    password = json.loads(value.strip())
    if password != os.environ.get("MONGO_STANDIN_PASSWORD"):
        print("Failed: error connecting to db server: auth error: bad password", file=sys.stderr)
        sys.exit(1)


def dump(args: argparse.Namespace) -> None:
    databases = [args.db] if args.db else sorted(p.name for p in DATA.iterdir() if p.is_dir())
    out = sys.stdout.buffer
    out.write(json.dumps({"archive": "standin", "databases": databases}).encode() + b"\n")
    for database in databases:
        folder = DATA / database
        if not folder.is_dir():
            print(f"Failed: database {database} does not exist", file=sys.stderr)
            sys.exit(1)
        for collection in sorted(folder.glob("*.json")):
            documents = json.loads(collection.read_text())
            out.write(
                json.dumps({"ns": f"{database}.{collection.stem}", "documents": documents}).encode() + b"\n"
            )
    print(f"done dumping {len(databases)} databases", file=sys.stderr)


def restore(args: argparse.Namespace) -> None:
    lines = sys.stdin.buffer.read().splitlines()
    header = json.loads(lines[0])
    if header.get("archive") != "standin":
        print("Failed: stream is not an archive", file=sys.stderr)
        sys.exit(1)
    seen: set[str] = set()
    for line in lines[1:]:
        entry = json.loads(line)
        database, collection = entry["ns"].split(".", 1)
        if args.nsFrom and args.nsTo and args.nsFrom == f"{database}.*":
            database = args.nsTo[: -len(".*")]
        folder = DATA / database
        if args.drop and database not in seen and folder.exists():
            shutil.rmtree(folder)
        seen.add(database)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{collection}.json").write_text(json.dumps(entry["documents"]))
    print(f"restored {len(seen)} databases", file=sys.stderr)


def main() -> None:
    tool = os.environ.get("MONGO_STANDIN_TOOL") or os.path.basename(sys.argv[0])
    args = parse(sys.argv[1:])
    if LOG:
        with open(LOG, "a", encoding="utf-8") as fh:
            fh.write(json.dumps([tool, *sys.argv[1:]]) + "\n")
    check_password(args)
    if tool == "mongodump":
        dump(args)
    elif tool == "mongorestore":
        restore(args)
    else:
        sys.exit(f"unknown tool name {tool}")


if __name__ == "__main__":
    main()

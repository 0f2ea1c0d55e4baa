# One entry point for people and CI. `make demo` and `make test` work on a fresh
# clone: they create the virtual environment and install everything they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO := demo

.PHONY: setup demo test lint typecheck unit clean

setup: $(VENV)/.installed
	@# Bytecode for vger's own modules: with PYTHONDONTWRITEBYTECODE set (as on
	@# CI machines) every `vger` run would recompile them, ~35 ms of CPU each.
	@$(PY) -m compileall -q vger plugins >/dev/null

# OpenSSH's sshd for the SFTP tests (vger.testing.servers starts its own on a
# loopback port, with its own config and keys; SeaweedFS for the S3 tests comes
# with the dev extra). Debian's package; as root, like CI.
SSHD := /usr/sbin/sshd
.PHONY: sshd
sshd:
	@command -v $(SSHD) >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null; } || { echo "make: cannot install openssh-server (run as root: apt-get install openssh-server)" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# A real round trip: sample folder -> encrypted local repository -> restore -> compare.
demo: setup
	rm -rf $(DEMO) && mkdir -p $(DEMO)/sample/docs $(DEMO)/sample/photos
	$(PY) -c "import os,random; r=random.Random(1); [open(f'$(DEMO)/sample/docs/note{i}.txt','w').write(f'note {i}\n'*r.randint(1,2000)) for i in range(50)]; open('$(DEMO)/sample/photos/raw.bin','wb').write(os.urandom(8<<20))"
	cp $(DEMO)/sample/photos/raw.bin $(DEMO)/sample/photos/copy-of-raw.bin
	ln -s docs/note1.txt $(DEMO)/sample/shortcut
	printf 'repositories:\n  - url: ./repo\n    label: local\nsources:\n  - %s\n' "$(CURDIR)/$(DEMO)/sample" > $(DEMO)/vger.yaml
	cd $(DEMO) && VGER_PASSPHRASE=demo-passphrase VGER_CACHE_DIR=cache ../$(VENV)/bin/vger init
	cd $(DEMO) && VGER_PASSPHRASE=demo-passphrase VGER_CACHE_DIR=cache ../$(VENV)/bin/vger backup --stats
	cd $(DEMO) && VGER_PASSPHRASE=demo-passphrase VGER_CACHE_DIR=cache ../$(VENV)/bin/vger backup
	cd $(DEMO) && VGER_PASSPHRASE=demo-passphrase ../$(VENV)/bin/vger list
	cd $(DEMO) && VGER_PASSPHRASE=demo-passphrase ../$(VENV)/bin/vger restore --snapshot latest --dest restored
	cd $(DEMO) && VGER_PASSPHRASE=demo-passphrase ../$(VENV)/bin/vger check --verify-data
	diff -r $(DEMO)/sample $(DEMO)/restored$(CURDIR)/$(DEMO)/sample && echo "demo: restore is byte-identical"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# Two pytest workers (pytest-xdist) on this 2-core CI machine kind: most tests
# wait on vger subprocesses, and the crash loops run beside the rest.
TEST_WORKERS ?= 2

test: setup sshd lint typecheck
	$(PY) -m pytest -q -n $(TEST_WORKERS)

clean:
	rm -rf $(DEMO) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (docs/benchmarks.md): vger against restic and borg, interleaved, on a
# generated corpus (2 GiB by default) and 200,000 small files. Installs restic and
# borg from Debian's packages when missing. Pass options with BENCH_ARGS, e.g.
# `make bench BENCH_ARGS="--size 200M --reps 1"`.
.PHONY: bench bench-smoke
BENCH_ARGS ?=
# benchmarks.remote: the same corpus backed up to a local SeaweedFS (S3) and to
# local disk; object count and throughput ratio (docs/benchmarks-remote.md).
BENCH_REMOTE_ARGS ?=

bench: setup
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m benchmarks.run $(BENCH_ARGS)
	$(PY) -m benchmarks.remote $(BENCH_REMOTE_ARGS)

# The harness on a tiny corpus, so it cannot rot: writes into a temporary folder,
# installs nothing, runs restic and borg only when they are installed.
bench-smoke: setup
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m pytest -q tests/benchmarks/test_bench_smoke.py

#!/usr/bin/env bash
# Tests of the Python package, as a user gets it: `pip install ./bindings/python` (pip fetches
# maturin from PyPI, which builds the extension from this workspace in release mode) into the
# repository's virtual environment .venv (made if missing), then pytest on bindings/python/tests.
# Run from anywhere; non-interactive (no prompt, no stdin); scripts/test can call it.
#
# Time: the first build compiles the engine and its dependencies in release mode, about 4 minutes
# on 2 idle cores (cargo's target directory, CARGO_TARGET_DIR or the workspace's target/, is
# reused: later builds take seconds); the tests take 1-2 minutes on 2 busy cores (test_dask.py
# about 15 s). Installing dask and distributed the first time adds about 80 s (downloads; seconds
# once installed).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  python3 -m venv --clear .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check --no-input "$@" </dev/null; }

echo "==> pip install numpy scipy pyarrow polars pytest (the libraries the views are tested with)"
pip install --quiet numpy scipy pyarrow==26.0.1 polars pytest
echo "==> pip install dask[array,dataframe] distributed (dafstore.dask's tests)"
start=$SECONDS
pip install --quiet "dask[array,dataframe]" distributed
echo "    installed in $((SECONDS - start)) s"
echo "==> pip install ./bindings/python (maturin, release build)"
start=$SECONDS
# --force-reinstall --no-deps: the version does not change between commits, so rebuild always.
pip install --quiet --force-reinstall --no-deps ./bindings/python
echo "    built and installed in $((SECONDS - start)) s"

echo "==> pytest bindings/python/tests"
# Run outside the source tree so `import dafstore` is the installed package, not python/dafstore.
cd bindings/python/tests
exec ../../../.venv/bin/python -m pytest -q -p no:cacheprovider . </dev/null

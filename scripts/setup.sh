#!/usr/bin/env bash
# Install camkit and everything it needs on a fresh Debian machine, then run the demo or the tests.
#   bash scripts/setup.sh demo   # install, then `camkit demo` (about 5 minutes on 2 CPU cores)
#   bash scripts/setup.sh test   # install with test extras, then lint and the test suite
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-demo}"
case "$what" in demo|test) ;; *) echo "usage: bash scripts/setup.sh demo|test" >&2; exit 2 ;; esac

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  [ "$apt_updated" = 1 ] || { sudo_ apt-get update -qq; apt_updated=1; }
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. system packages: the Fashion-MNIST files of the embedded benchmark
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "installing dataset-fashion-mnist (Debian)"
  apt_install dataset-fashion-mnist
fi

# 2. a virtual environment (Debian's python3 needs python3-venv for that)
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "installing python3-venv (Debian)"
    apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true

# 3. camkit itself (PyTorch and torchvision come from PyPI)
if [ "$what" = test ]; then extras=".[test]"; else extras="."; fi
.venv/bin/python -m pip install -q -e "$extras" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import camkit, torch, torchvision" || { echo "camkit did not install; see the pip output above" >&2; exit 1; }

# 4. run
if [ "$what" = demo ]; then
  exec .venv/bin/camkit demo --out camkit-demo --force
else
  .venv/bin/ruff check src tests benchmarks
  .venv/bin/ruff format --check src tests benchmarks
  .venv/bin/mypy  # settings and files in pyproject.toml [tool.mypy]
  exec .venv/bin/python -m pytest -m "not slow" -q -p no:cacheprovider
fi

#!/usr/bin/env bash
# Create or update the project venv (.venv) so that `make run` and `make test` work offline afterwards.
# Idempotent: a second run with nothing changed only checks a stamp and returns.
#   scripts/setup.sh          runtime dependencies
#   scripts/setup.sh dev      runtime + test/lint tools
# llama-cpp-python is built from source once per machine and per CMAKE_ARGS: the wheel is kept in
# ~/.cache/minicpm-assistant/wheels/<flags-hash>/, so a new venv or a CI clone reuses it.
set -euo pipefail
cd "$(dirname "$0")/.."

extra="${1:-}"
python="${PYTHON:-python3}"
venv=.venv
llama_version=$(sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)

# GPU flags: CMAKE_ARGS from the environment wins; otherwise CUDA when an NVIDIA GPU and nvcc exist.
# On Apple Silicon llama.cpp enables Metal by default.
if [ -z "${CMAKE_ARGS:-}" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 \
    && command -v nvcc >/dev/null 2>&1; then
  export CMAKE_ARGS="-DGGML_CUDA=on"
fi
flags="${CMAKE_ARGS:-cpu}"
flags_hash=$(printf '%s|%s' "$llama_version" "$flags" | sha256sum 2>/dev/null | cut -c1-12 || printf '%s|%s' "$llama_version" "$flags" | shasum -a 256 | cut -c1-12)

stamp_key=$(cat pyproject.toml scripts/setup.sh | sha256sum 2>/dev/null | cut -c1-16 || cat pyproject.toml scripts/setup.sh | shasum -a 256 | cut -c1-16)
stamp="$venv/.setup-${extra:-run}-${stamp_key}-${flags_hash}"
if [ -f "$stamp" ]; then
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip wheel setuptools

# torch: install the CPU build explicitly where there is no CUDA GPU, so pip never pulls a multi-GB
# CUDA build as a dependency of sentence-transformers.
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  echo "==> installing torch"
  if [ "$(uname -s)" = "Linux" ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
    if curl -fsS -m 5 -o /dev/null https://download.pytorch.org/whl/cpu/ 2>/dev/null; then
      "${pip[@]}" install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
    else
      "${pip[@]}" install "torch==2.13.0"
    fi
  else
    "${pip[@]}" install "torch==2.13.0"
  fi
fi

# llama-cpp-python: build the wheel once per machine and flag set, then install from that file.
wheel_dir="${XDG_CACHE_HOME:-$HOME/.cache}/minicpm-assistant/wheels/llama-${flags_hash}"
if ! ls "$wheel_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "==> building llama-cpp-python $llama_version (CMAKE_ARGS='${CMAKE_ARGS:-}'); once per machine, several minutes"
  mkdir -p "$wheel_dir"
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}" \
    "${pip[@]}" wheel --no-deps --no-cache-dir -w "$wheel_dir" "llama-cpp-python==$llama_version"
fi
"${pip[@]}" install --no-deps "$wheel_dir"/llama_cpp_python-*.whl

# The terminal end-to-end test drives the real binary in tmux.
if [ "$extra" = "dev" ] && ! command -v tmux >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing tmux (terminal end-to-end test)"
    { apt-get install -y -qq tmux || { apt-get update -qq && apt-get install -y -qq tmux; }; } >/dev/null
  else
    echo "note: tmux is not installed; the terminal end-to-end test will be skipped"
  fi
fi

echo "==> installing minicpm-assistant${extra:+ [$extra]}"
if [ -n "$extra" ]; then
  "${pip[@]}" install -e ".[$extra]"
else
  "${pip[@]}" install -e .
fi
rm -f "$venv"/.setup-"${extra:-run}"-*
touch "$stamp"

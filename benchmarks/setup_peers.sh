#!/usr/bin/env bash
# The peers' environment for bench.py: torch-audiomentations needs torchaudio, which only
# loads with its own torch (2.11), so it lives in a separate venv (.venv-peers, git-ignored).
# audiomentations runs in the main environment (pip install -e .[bench]).
#
#   bash benchmarks/setup_peers.sh            # -> .venv-peers/bin/python
#   PEERS_VENV=/path/to/venv bash benchmarks/setup_peers.sh
#
# From PyPI this torch is the CUDA build (several GB of nvidia-* wheels); it also runs on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PEERS_VENV:-.venv-peers}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install "torch==2.11.0" "torchaudio==2.11.0" "torch-audiomentations==0.12.0" soundfile numpy
"$VENV/bin/python" -c "import torch, torchaudio, torch_audiomentations as t; print('peers ok:', torch.__version__, torchaudio.__version__, t.__version__)"

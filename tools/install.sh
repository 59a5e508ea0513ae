#!/usr/bin/env bash
# Install mmagic_vico and the versions it was tested with into the active Python environment.
#   bash tools/install.sh            # the library and tools
#   bash tools/install.sh --demo     # plus the web demo (gradio)
#   bash tools/install.sh --tests    # plus the demo and the test runner (pytest, playwright for the browser test)
set -euo pipefail
cd "$(dirname "$0")/.."
# torch first and alone: with 2.13.0 in place nothing below pulls another (CUDA-sized) build.
python -m pip install torch==2.13.0
python -m pip install -r requirements.txt
python -m pip install --no-deps -e .
# Only for CLIP's BPE vocabulary file (the tiny model's tokenizer); its dependencies would pull torchvision.
python -m pip install --no-deps open-clip-torch==3.3.0
case "${1:-}" in
  --demo) python -m pip install -r requirements/demo.txt ;;
  --tests) python -m pip install -r requirements/tests.txt ;;
  "") ;;
  *) echo "unknown option ${1}: use --demo or --tests" >&2; exit 2 ;;
esac

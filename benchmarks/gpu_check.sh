#!/usr/bin/env bash
# One command for a lent GPU: install what was carried, then every GPU stage of gpu_check.py.
#
#   bash benchmarks/gpu_check.sh              # on the GPU machine (no network): <= 8 min on an H200
#   bash benchmarks/gpu_check.sh --dry-run    # anywhere: the same stages on the CPU, tiny sizes
#   bash benchmarks/gpu_check.sh --wheels     # here, with network: fill .whl/ and .gpu-data/ to carry
#
# Output folder: $GPU_CHECK_OUT, else $OUT (the device tool's), else benchmarks/results/gpu-check
# (dry run: /tmp/gpuaug-gpu-check-dry). It gets summary.json, one JSON per stage, pytest-junit.xml
# and gpu-check.log (8 files at most, the device tool's limit). Other arguments go to gpu_check.py
# (e.g. --budget 300, --only pytest kernels, --skip memory).
set -uo pipefail
cd "$(dirname "$0")/.."

MODE=run
ARGS=()
for a in "$@"; do
  case "$a" in
    --dry-run) MODE=dry; ARGS+=("$a") ;;
    --wheels) MODE=wheels ;;
    *) ARGS+=("$a") ;;
  esac
done

# ---------------------------------------------------------------------------------- --wheels
if [ "$MODE" = wheels ]; then
  # Pure-Python / manylinux wheels the GPU image lacks (see /work/.library/device/KINDS.md: it
  # has torch, numpy, scipy, numba, numba-cuda, cupy, transformers, pytest, hypothesis), for
  # its Python 3.12 on x86-64, and a small subset of ../shared/data (10 MB) as .gpu-data/.
  PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
  set -e
  grep -qxF '/.whl/' .gitignore 2>/dev/null || { mkdir -p .git/info; grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude; }
  mkdir -p .git/info && { grep -qxF '/.gpu-data/' .git/info/exclude 2>/dev/null || echo '/.gpu-data/' >> .git/info/exclude; }
  rm -rf .whl && mkdir -p .whl
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    julius==0.2.8 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
  SRC=${GPUAUG_SHARED_DATA:-../shared/data}
  if [ -f "$SRC/MANIFEST.tsv" ]; then
    rm -rf .gpu-data && mkdir -p .gpu-data/noise .gpu-data/rir
    cp "$SRC/MANIFEST.tsv" .gpu-data/
    cp -r "$SRC/emotion" "$SRC/speech" .gpu-data/
    for f in domestic_clock_tick domestic_door_creak domestic_watch_tick human_laugh_evil_01 human_laugh_evil_02 \
             human_vomit_01 natural_cricket natural_esc50_3-103051-C-19_thunderstorm natural_rain_opticreep; do
      cp "$SRC/noise/$f.wav" .gpu-data/noise/
    done
    for f in clap_seminar_room_rir clap_seminar_room_brir_kemar openair_pommelte_timber_circle_open_air \
             openair_st_andrews_church_large_church; do
      cp "$SRC/rir/$f.wav" .gpu-data/rir/
    done
    chmod -R u+w .gpu-data
  else
    echo "no $SRC/MANIFEST.tsv: .gpu-data/ not made (the GPU run then uses synthetic speech)"
  fi
  ls -la .whl; du -sh .whl .gpu-data 2>/dev/null
  exit 0
fi

# ---------------------------------------------------------------------------------- output + log
if [ "$MODE" = dry ]; then
  OUT_DIR=${GPU_CHECK_OUT:-/tmp/gpuaug-gpu-check-dry}
else
  OUT_DIR=${GPU_CHECK_OUT:-${OUT:-benchmarks/results/gpu-check}}
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
exec > >(tee -a "$OUT_DIR/gpu-check.log") 2>&1
export PYTHONUNBUFFERED=1
T0=$(date +%s)
echo "gpu_check.sh $MODE $(date -u +%FT%TZ) in $(pwd) -> $OUT_DIR"

# ---------------------------------------------------------------------------------- install
if [ "$MODE" = dry ]; then
  PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
else
  PY=${PYTHON:-python3}
  SITE=${GPU_CHECK_SITE:-/tmp/site}
  if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
      || echo "WARNING: installing the carried wheels failed"
  else
    echo "no .whl/ carried: julius / soundfile may be missing (bash benchmarks/gpu_check.sh --wheels, carry .whl)"
  fi
  if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --upgrade \
       --target "$SITE" . ; then
    echo "pip could not build gpuaug: copying the package instead"
    rm -rf "$SITE/gpuaug" && mkdir -p "$SITE" && cp -r gpuaug "$SITE/gpuaug" && rm -rf "$SITE/gpuaug/kernels" \
      && cp -r kernels "$SITE/gpuaug/kernels"
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  if [ -z "${GPUAUG_SHARED_DATA:-}" ] && [ ! -f ../shared/data/MANIFEST.tsv ] && [ -f .gpu-data/MANIFEST.tsv ]; then
    export GPUAUG_SHARED_DATA=$(pwd)/.gpu-data
  fi
  echo "installed in $((`date +%s` - T0)) s; GPUAUG_SHARED_DATA=${GPUAUG_SHARED_DATA:-<unset>}"
fi

# ---------------------------------------------------------------------------------- versions
"$PY" -P - <<'EOF' || echo "WARNING: version report failed"
import importlib, platform, subprocess
import torch
print(f"python {platform.python_version()}  torch {torch.__version__}  cuda {torch.version.cuda}  "
      f"cuda available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, cc {p.major}.{p.minor}")
from importlib import metadata
for dist, mod in (("gpuaug", "gpuaug"), ("numpy", "numpy"), ("numba", "numba"), ("numba-cuda", "numba.cuda"),
                  ("cupy-cuda13x", "cupy"), ("transformers", "transformers"), ("julius", "julius"),
                  ("soundfile", "soundfile"), ("scipy", "scipy"), ("pytest", "pytest")):
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "?"
    try:
        where = getattr(importlib.import_module(mod), "__file__", "")
        print(f"  {dist:<13} {version:<12} {where}")
    except Exception as e:
        print(f"  {dist:<13} MISSING ({type(e).__name__}: {e})")
try:
    print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout.strip())
except Exception:
    pass
EOF

# ---------------------------------------------------------------------------------- stages
"$PY" benchmarks/gpu_check.py --out "$OUT_DIR" ${ARGS[@]+"${ARGS[@]}"}
RC=$?
echo "gpu_check.sh done in $((`date +%s` - T0)) s, rc $RC; files in $OUT_DIR:"
ls -la "$OUT_DIR"
exit $RC

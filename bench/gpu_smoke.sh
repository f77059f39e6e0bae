#!/usr/bin/env bash
# GPU smoke run: grade the reference and the sample class of each Keras assignment on the GPU,
# sampling GPU memory with nvidia-smi, and write bench/results/gpu-smoke.md.
#
# Usage: bench/gpu_smoke.sh [assignment ...]     (default: keras_mlp keras_cnn alexnet)
# Needs an NVIDIA GPU, nvidia-smi and `pip install -e '.[gpu]'` (TensorFlow with CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=bench/results/gpu-smoke.md
ASSIGNMENTS=("${@:-keras_mlp keras_cnn alexnet}")
read -r -a ASSIGNMENTS <<< "${ASSIGNMENTS[*]}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_smoke: no NVIDIA GPU here (nvidia-smi missing or it lists no GPU); run this on a" \
         "GPU runner. Nothing was measured." >&2
    exit 2
fi
if ! "$PY" -c 'import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices("GPU") else 1)' 2>/dev/null; then
    echo "gpu_smoke: TensorFlow does not see the GPU; install the CUDA build with" \
         "\`$PY -m pip install -e '.[gpu]'\`." >&2
    exit 2
fi

export GRADER_DEVICE=gpu
work=$(mktemp -d)
trap 'kill "$sampler" 2>/dev/null || true; rm -rf "$work"' EXIT

# Sample used GPU memory (MiB, all GPUs summed) every 0.5 s in the background.
( while true; do
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits \
          | awk -v t="$(date +%s.%N)" '{s+=$1} END {print t, s}'
      sleep 0.5
  done ) > "$work/memory.log" &
sampler=$!

peak_between() {  # peak MiB between two epoch times
    awk -v a="$1" -v b="$2" '$1>=a && $1<=b && $2>m {m=$2} END {print m+0}' "$work/memory.log"
}

{
    echo "# GPU smoke run"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M') UTC by \`bench/gpu_smoke.sh\` on $(hostname):" \
         "$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | paste -sd ';' -)," \
         "$(nproc) CPUs. Device gpu (budgets from [accuracy.gpu] / [budgets.gpu])."
    echo
    echo "| assignment | what | submissions | wall | per submission | score(s) | GPU memory peak |"
    echo "| --- | --- | ---: | ---: | ---: | --- | ---: |"
} > "$work/report.md"

for id in "${ASSIGNMENTS[@]}"; do
    reference=$("$PY" -c "from grader.config import load_assignment as l; print(l('$id').files[0].reference)")
    student=$("$PY" -c "from grader.config import load_assignment as l; print(l('$id').files[0].student)")
    mkdir -p "$work/$id/reference"
    cp "$reference" "$work/$id/reference/$student"
    for what in reference samples; do
        if [ "$what" = reference ]; then target="$work/$id/reference"; else target="assignments/$id/samples"; fi
        [ -e "$target" ] || continue
        start=$(date +%s.%N)
        "$PY" -m grader autograde "$id" "$target" --out "$work/$id/graded-$what" \
            > "$work/$id/$what.log" 2>&1 || echo "  ($id $what: grader exited $?)" >&2
        end=$(date +%s.%N)
        n=$(find "$work/$id/graded-$what" -name results.json 2>/dev/null | wc -l)
        scores=$("$PY" - "$work/$id/graded-$what" <<'PYEOF'
import json, pathlib, sys
scores = [json.loads(p.read_text())["score"] for p in sorted(pathlib.Path(sys.argv[1]).rglob("results.json"))]
print(", ".join(f"{s:g}" for s in scores[:8]) + (" ..." if len(scores) > 8 else ""))
PYEOF
)
        wall=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b-a}')
        per=$(awk -v w="$wall" -v n="$n" 'BEGIN {if (n>0) printf "%.1f", w/n; else print "-"}')
        echo "| $id | $what | $n | ${wall} s | ${per} s | $scores | $(peak_between "$start" "$end") MiB |" \
            >> "$work/report.md"
        echo "$id $what: $n graded in ${wall} s"
    done
done

mkdir -p bench/results
cp "$work/report.md" "$OUT"
echo "wrote $OUT"
cat "$OUT"

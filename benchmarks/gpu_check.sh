#!/usr/bin/env bash
# The one script for a short GPU lease (about 7 minutes, 9.5 at most, on one H100/H200 once up).
#
# Runs benchmarks/train_step.py for VideoMAE base (batch 8) and large (batch 4) at 16x224 in
# bfloat16 with the cuDNN attention: JAX against PyTorch eager and torch.compile, with MFU and
# memory per contender. Each variant runs in its own process (fresh allocators; an OOM of one
# variant leaves the other's row). Writes OUT_DIR/benchmarks_gpu.md (machine, versions,
# commands, tables) and one log per variant; copy benchmarks_gpu.md to docs/.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      # from the repository root; OUT_DIR default $OUT
#
# Needs python3 with jax (CUDA), flax, optax, numpy and torch (CUDA); mmae_jax is taken from
# this checkout through PYTHONPATH, so nothing is installed.
#
# Smoke run on a CPU (checks the script and train_step.py, measures nothing of a GPU):
#   GPU_CHECK_SPECS="tiny 1 300" GPU_CHECK_ARGS="--frames 4 --size 32 --dtype float32 --attention einsum --steps 2 --warmup 0" \
#     PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh /tmp/gpu_check_smoke
set -uo pipefail

out=${1:-${OUT:-benchmarks_gpu_out}}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
report="$out/benchmarks_gpu.md"

{
  echo "# GPU benchmarks"
  echo
  echo "Written by \`bash benchmarks/gpu_check.sh\` on $(date '+%Y-%m-%d %H:%M %Z')."
  echo
  echo "## Machine"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/- GPU: /'
  "$python" - <<'EOF'
import sys
sys.path.insert(0, "benchmarks")
import common
print("\n".join(common.machine_lines()))
import jax, torch
print(f"- JAX devices: {jax.devices()}; torch CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
EOF
  echo
} > "$report" 2>&1

status=0
# variant, batch, seconds allowed (compilation included; large compiles longest), ';'-separated
specs=${GPU_CHECK_SPECS:-"base 8 240;large 4 320"}
read -r -a step_args <<< "${GPU_CHECK_ARGS:---dtype bfloat16 --attention cudnn --steps 20 --warmup 3}"
IFS=';' read -r -a spec_list <<< "$specs"
for spec in "${spec_list[@]}"; do
  read -r variant batch per_variant_s <<< "$spec"
  command="python benchmarks/train_step.py --variant $variant --batch $batch ${step_args[*]}"
  echo "== $command"
  timeout "$per_variant_s" "$python" benchmarks/train_step.py --variant "$variant" --batch "$batch" \
      "${step_args[@]}" 2>&1 | tee "$out/train_step_$variant.log"
  code=${PIPESTATUS[0]}
  {
    echo "## $variant, batch $batch"
    echo
    echo '```bash'
    echo "$command"
    echo '```'
    echo
    if [ "$code" -eq 0 ]; then
      sed -n '/^Training step/,$p' "$out/train_step_$variant.log"
    else
      echo "**Failed** (exit status $code; 124 = over ${per_variant_s} s). End of its output:"
      echo
      echo '```text'
      tail -n 15 "$out/train_step_$variant.log"
      echo '```'
      status=1
    fi
    echo
  } >> "$report"
done
echo "== wrote $report"
cat "$report"
exit "$status"

#!/usr/bin/env bash
# The one script for a short GPU lease (about 8 minutes, 11 at most, on one H100/H200 once up).
#
# First the step that `mmae-jax train` runs (benchmarks/assembled_step.py: the assembly's step,
# with the attention kernel chosen for the GPU) for VideoMAE base (8 clips) and large (4 clips)
# at 16x224 in bfloat16, the VideoMAE recipe; then benchmarks/train_step.py for base (batch 8,
# cuDNN attention): JAX against PyTorch eager and torch.compile, with MFU and memory per
# contender. Each run is its own process (fresh allocators; an OOM of one leaves the others'
# rows). Writes OUT_DIR/benchmarks_gpu.md (machine, versions, commands, tables) and one log per
# run; copy benchmarks_gpu.md to docs/.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      # from the repository root; OUT_DIR default $OUT
#
# Needs python3 with jax (CUDA), flax, optax, numpy and torch (CUDA); mmae_jax is taken from
# this checkout through PYTHONPATH, so nothing is installed.
#
# Smoke run on a CPU (checks the script, assembled_step.py and train_step.py, measures nothing of a GPU):
#   GPU_CHECK_TRAIN_SPECS="tiny 2 300" GPU_CHECK_CONFIG=demo \
#   GPU_CHECK_TRAIN_ARGS="--config.data.num_frames=4 --config.data.image_size=32 --steps 2 --warmup 0" \
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
# run_section TITLE LOG SECONDS TABLE_START SCRIPT ARGS...: run one benchmark under a time limit,
# keep its log, and append its command and table (from the line starting TABLE_START) to the report.
run_section() {
  local title=$1 log=$2 seconds=$3 table_start=$4
  shift 4
  local command="python $*"
  echo "== $command"
  timeout "$seconds" "$python" "$@" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  {
    echo "## $title"
    echo
    echo '```bash'
    echo "$command"
    echo '```'
    echo
    if [ "$code" -eq 0 ]; then
      sed -n "/^$table_start/,\$p" "$log"
    else
      echo "**Failed** (exit status $code; 124 = over ${seconds} s). End of its output:"
      echo
      echo '```text'
      tail -n 15 "$log"
      echo '```'
      status=1
    fi
    echo
  } >> "$report"
}

# The training step as `train` assembles it: variant, clips per device, seconds allowed.
train_specs=${GPU_CHECK_TRAIN_SPECS:-"base 8 150;large 4 200"}
read -r -a train_args <<< "${GPU_CHECK_TRAIN_ARGS:---config.model.dtype=bfloat16 --steps 20 --warmup 3}"
IFS=';' read -r -a train_list <<< "$train_specs"
for spec in "${train_list[@]}"; do
  read -r variant batch per_variant_s <<< "$spec"
  config=${GPU_CHECK_CONFIG:-"ravdess:variant=$variant,recipe=videomae"}
  run_section "The step \`train\` runs: $variant, $batch clips per device" "$out/assembled_step_$variant.log" \
      "$per_variant_s" "Training step as" benchmarks/assembled_step.py --config "$config" \
      --per-device-batch "$batch" "${train_args[@]}"
done

# JAX against PyTorch: variant, batch, seconds allowed (compilation included; large compiles longest), ';'-separated
specs=${GPU_CHECK_SPECS:-"base 8 240"}
read -r -a step_args <<< "${GPU_CHECK_ARGS:---dtype bfloat16 --attention cudnn --steps 20 --warmup 3}"
IFS=';' read -r -a spec_list <<< "$specs"
for spec in "${spec_list[@]}"; do
  read -r variant batch per_variant_s <<< "$spec"
  run_section "$variant, batch $batch" "$out/train_step_$variant.log" "$per_variant_s" "Training step" \
      benchmarks/train_step.py --variant "$variant" --batch "$batch" "${step_args[@]}"
done
echo "== wrote $report"
cat "$report"
exit "$status"

#!/usr/bin/env bash
# realgpu.sh proves the NVML source and the agent on a real NVIDIA GPU.
# Build here with `make realgpu-build` (cgo), carry bin/gpu to a GPU
# machine and run this there from the repository root; output goes to $OUT
# (default ./realgpu-out). It needs python3 with PyTorch for the load.
set -u
OUT=${OUT:-realgpu-out}; mkdir -p "$OUT"
B=bin/gpu
fetch() { python3 -c 'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())' "$1"; }
nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,memory.used,utilization.gpu,power.draw --format=csv | tee "$OUT/smi-idle.csv"
# ECC counts (volatile and aggregate), row remapping, power and MIG, for
# comparison with the agent's readings (energy, ECC, remap, minor, MIG).
nvidia-smi -q -d ECC,ROW_REMAPPER,POWER,PERFORMANCE | tee "$OUT/smi-health.txt"
nvidia-smi -L | tee -a "$OUT/smi-idle.csv" # MIG devices, where enabled
HEADROOM_REAL_GPU=1 $B/gonvml.test -test.run 'TestRealDriver|TestRealEnergyAndMemoryHealth' -test.v 2>&1 | tee "$OUT/test-idle.txt"
$B/headroom-agent --node-name gpu-node --listen-address 127.0.0.1:9400 --collector.modelserver=false \
  --sample-interval 1s >"$OUT/agent.log" 2>&1 &
agent=$!
sleep 3; fetch http://127.0.0.1:9400/metrics >"$OUT/metrics-idle.prom"
# Load: 24 GiB held and bf16 matrix products for 20 s, from one process.
python3 - >"$OUT/load.txt" 2>&1 <<'PY' &
import torch, time
x = torch.empty(24 << 30, dtype=torch.uint8, device="cuda")
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
end = time.time() + 20
n = 0
while time.time() < end:
    for _ in range(20): a @ a
    torch.cuda.synchronize(); n += 20
print("matmuls", n, "held bytes", x.numel())
PY
load=$!
sleep 10
fetch http://127.0.0.1:9400/metrics >"$OUT/metrics-load.prom"
nvidia-smi --query-gpu=memory.used,utilization.gpu,power.draw --format=csv | tee "$OUT/smi-load.csv"
nvidia-smi --query-compute-apps=pid,used_memory --format=csv | tee -a "$OUT/smi-load.csv"
HEADROOM_REAL_GPU=1 $B/gonvml.test -test.run 'TestRealDriver|TestRealEnergyAndMemoryHealth' -test.v 2>&1 | tee "$OUT/test-load.txt"
HEADROOM_REAL_GPU=1 $B/gonvml.test -test.run '^$' -test.bench BenchmarkRealCollect -test.benchtime 100x -test.benchmem 2>&1 | tee "$OUT/bench.txt"
wait $load; sleep 3
fetch http://127.0.0.1:9400/metrics >"$OUT/metrics-after.prom"
kill $agent; wait $agent
for f in idle load after; do
  echo "== $f"; grep -E '^headroom_gpu_(memory_used|utilization|sm_active|processes|process_memory|power|energy|ecc_errors|remapped_rows|row_remap|mig_memory)|^headroom_(container_gpu_energy|pod_energy_per_output_token)|^headroom_collector_duration_seconds_(sum|count)|^headroom_agent_sample_duration_seconds_(sum|count)|^headroom_collector_success' "$OUT/metrics-$f.prom"
done | tee "$OUT/summary.txt"

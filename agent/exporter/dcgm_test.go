package exporter

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/snapshot"
)

var dcgmFamilies = []string{
	"headroom_dcgm_up",
	"headroom_gpu_dcgm_sm_active_ratio", "headroom_gpu_dcgm_sm_occupancy_ratio",
	"headroom_gpu_dcgm_tensor_active_ratio", "headroom_gpu_dcgm_dram_active_ratio",
	"headroom_gpu_pcie_tx_bytes_per_second", "headroom_gpu_pcie_rx_bytes_per_second",
	"headroom_gpu_nvlink_tx_bytes_per_second", "headroom_gpu_nvlink_rx_bytes_per_second",
}

func TestDCGMExposition(t *testing.T) {
	t.Parallel()
	// GPU-a is held by one container and DCGM left two fields blank;
	// GPU-b has no profile (DCGM does not know it); GPU-c is lost.
	withGPUs := func(up bool) *snapshot.Snapshot {
		s := &snapshot.Snapshot{Node: "node-a", System: snapshot.System{DCGM: &snapshot.DCGM{Up: up}}}
		s.GPUs = []snapshot.GPU{
			{Index: 0, UUID: "GPU-a", Name: "H100", Profiling: &snapshot.Profiling{
				SMActive: f(0.5), SMOccupancy: f(0.25), TensorActive: f(0.125), DRAMActive: f(0.75),
				PCIeTxBytes: f(1.5e9), PCIeRxBytes: f(2.5e9)}},
			{Index: 1, UUID: "GPU-b", Name: "H100"},
			{Index: 2, UUID: "GPU-c", Name: "H100", Lost: true, Profiling: &snapshot.Profiling{SMActive: f(0.9)}},
		}
		s.Attribution = &snapshot.Attribution{Owners: map[string][]snapshot.Owner{"GPU-a": {{Namespace: "llm", Pod: "vllm-0", Container: "vllm"}}}}
		return s
	}
	const labels = `{container="vllm",gpu="0",model="H100",namespace="llm",node="node-a",pod="vllm-0",uuid="GPU-a"}`
	for _, tc := range []struct {
		name string
		snap *snapshot.Snapshot
		want string
	}{
		{"up", withGPUs(true), `
# HELP headroom_dcgm_up 1 while a DCGM host engine is connected; 0 when libdcgm or the host engine is missing (NVML's GPM values stand).
# TYPE headroom_dcgm_up gauge
headroom_dcgm_up{node="node-a"} 1
# HELP headroom_gpu_dcgm_dram_active_ratio DCGM_FI_PROF_DRAM_ACTIVE: share of cycles device memory was sending or receiving data (0-1).
# TYPE headroom_gpu_dcgm_dram_active_ratio gauge
headroom_gpu_dcgm_dram_active_ratio` + labels + ` 0.75
# HELP headroom_gpu_dcgm_sm_active_ratio DCGM_FI_PROF_SM_ACTIVE: share of time at least one warp was resident on an SM, averaged over SMs (0-1).
# TYPE headroom_gpu_dcgm_sm_active_ratio gauge
headroom_gpu_dcgm_sm_active_ratio` + labels + ` 0.5
# HELP headroom_gpu_dcgm_sm_occupancy_ratio DCGM_FI_PROF_SM_OCCUPANCY: resident warps over the SMs' maximum (0-1).
# TYPE headroom_gpu_dcgm_sm_occupancy_ratio gauge
headroom_gpu_dcgm_sm_occupancy_ratio` + labels + ` 0.25
# HELP headroom_gpu_dcgm_tensor_active_ratio DCGM_FI_PROF_PIPE_TENSOR_ACTIVE: share of cycles the tensor pipes were busy (0-1).
# TYPE headroom_gpu_dcgm_tensor_active_ratio gauge
headroom_gpu_dcgm_tensor_active_ratio` + labels + ` 0.125
# HELP headroom_gpu_pcie_rx_bytes_per_second DCGM_FI_PROF_PCIE_RX_BYTES: PCIe bytes the GPU received per second.
# TYPE headroom_gpu_pcie_rx_bytes_per_second gauge
headroom_gpu_pcie_rx_bytes_per_second` + labels + ` 2.5e+09
# HELP headroom_gpu_pcie_tx_bytes_per_second DCGM_FI_PROF_PCIE_TX_BYTES: PCIe bytes the GPU sent per second.
# TYPE headroom_gpu_pcie_tx_bytes_per_second gauge
headroom_gpu_pcie_tx_bytes_per_second` + labels + ` 1.5e+09
`},
		{"down", &snapshot.Snapshot{Node: "node-a", System: snapshot.System{DCGM: &snapshot.DCGM{}}, GPUs: []snapshot.GPU{{UUID: "GPU-a", SMActive: f(0.4)}}}, `
# HELP headroom_dcgm_up 1 while a DCGM host engine is connected; 0 when libdcgm or the host engine is missing (NVML's GPM values stand).
# TYPE headroom_dcgm_up gauge
headroom_dcgm_up{node="node-a"} 0
`},
		{"collector off", &snapshot.Snapshot{Node: "node-a", GPUs: []snapshot.GPU{{UUID: "GPU-a"}}}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := New(func() *snapshot.Snapshot { return tc.snap })
			if err := testutil.GatherAndCompare(e, strings.NewReader(tc.want), dcgmFamilies...); err != nil {
				t.Error(err)
			}
		})
	}
}

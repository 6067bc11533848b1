//go:build cgo

package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/dcgm"
	"github.com/headroom-dev/headroom/collector/dcgm/godcgm"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/sim/gpusim"
)

// TestWithoutDCGM runs the real go-dcgm adapter on a machine without
// libdcgm: the dcgm collector must succeed, report down, and serve no
// profiling series.
func TestWithoutDCGM(t *testing.T) {
	t.Parallel()
	if probe := godcgm.New(); probe.Connect("") == nil {
		_ = probe.Shutdown()
		t.Skip("a DCGM host engine started here; this test covers hosts without libdcgm")
	}
	a := start(t, simulated(testOptions(), newSim(t, "dgxh100", 1)))
	body := waitMetrics(t, a, `headroom_collector_success{collector="dcgm"} 1`, `headroom_dcgm_up{node="node-a"} 0`)
	for _, unwanted := range []string{"headroom_gpu_dcgm_", "headroom_gpu_pcie_", "headroom_gpu_nvlink_"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("/metrics has %s series without DCGM", unwanted)
		}
	}
}

// TestDCGMFieldsOnSimulatedGPUs puts an in-memory DCGM beside the
// simulated GPUs, numbering them in reverse so that only a match by UUID
// lands each value on the right GPU.
func TestDCGMFieldsOnSimulatedGPUs(t *testing.T) {
	t.Parallel()
	sim, err := gpusim.New(gpusim.Options{Profile: "dgxh100", Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	lib := &simDCGM{}
	for i := range 8 {
		lib.gpus = append(lib.gpus, dcgm.GPU{ID: uint(7 - i), UUID: sim.UUID(i)})
	}
	o := testOptions()
	o.Collectors = collector.Table{nvml.Entry(gonvml.FromInterface(sim)), dcgm.Entry(lib, dcgm.DefaultOptions())}
	a := start(t, o)
	waitMetrics(t, a, `headroom_dcgm_up{node="node-a"} 1`,
		// NVML index 2 is DCGM ID 5: SM active 0.05, tensor absent (blank).
		`headroom_gpu_dcgm_sm_active_ratio{container="",gpu="2",model="NVIDIA H100 80GB HBM3",namespace="",node="node-a",pod="",uuid="`+sim.UUID(2)+`"} 0.05`,
		`headroom_gpu_pcie_rx_bytes_per_second{container="",gpu="0",model="NVIDIA H100 80GB HBM3",namespace="",node="node-a",pod="",uuid="`+sim.UUID(0)+`"} 7000`,
	)
	if _, body := get(t, a, "/metrics"); strings.Contains(body, "headroom_gpu_dcgm_tensor_active_ratio") {
		t.Error("a blank DCGM field was served")
	}
}

// simDCGM is an in-memory host engine: SM active is ID/100, PCIe rx is
// ID*1000 bytes/s, every other field is blank.
type simDCGM struct {
	gpus      []dcgm.GPU
	connected bool
}

func (l *simDCGM) Connect(string) error { l.connected = true; return nil }

func (l *simDCGM) GPUs() ([]dcgm.GPU, error) { return l.gpus, l.check() }

func (l *simDCGM) Watch([]uint, []dcgm.Field, time.Duration) error { return l.check() }

func (l *simDCGM) Latest(id uint, fields []dcgm.Field) ([]dcgm.Value, error) {
	out := make([]dcgm.Value, len(fields))
	for i, f := range fields {
		out[i] = dcgm.Value{Field: f, Blank: true}
		switch f {
		case dcgm.FieldSMActive:
			out[i] = dcgm.Value{Field: f, Value: float64(id) / 100}
		case dcgm.FieldPCIeRxBytes:
			out[i] = dcgm.Value{Field: f, Value: float64(id) * 1000}
		}
	}
	return out, l.check()
}

func (l *simDCGM) Shutdown() error { l.connected = false; return nil }

func (l *simDCGM) check() error {
	if !l.connected {
		return dcgm.ErrNotConnected
	}
	return nil
}

func TestDCGMOptionsValidatedWhenEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		dcgmOn  bool
		wantErr bool
	}{
		{"dcgm on", true, true},
		{"dcgm off", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := testOptions()
			do := dcgm.DefaultOptions()
			do.Address = "no-port"
			entry := dcgm.Entry(godcgm.New(), do)
			entry.DefaultOn = tc.dcgmOn
			o.Collectors = o.Collectors.With(entry)
			err := o.Validate()
			if got := err != nil && strings.Contains(err.Error(), "--dcgm.address"); got != tc.wantErr {
				t.Errorf("Validate() = %v, want a --dcgm.address error: %v", err, tc.wantErr)
			}
		})
	}
}

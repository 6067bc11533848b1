package exporter

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/headroom-dev/headroom/snapshot"
)

// dcgmDefs are the DCGM source's families: its availability and the
// profiling fields, on the same GPU-wide labels as the NVML metrics.
type dcgmDefs struct {
	up                                        *def
	smActive, smOccupancy, tensorActive, dram *def
	pcieTx, pcieRx, nvlinkTx, nvlinkRx        *def
}

func (e *Exporter) newDCGMDefs() dcgmDefs {
	g := func(name, help string) *def {
		return e.def(name, "gauge", "dcgm", help, withGPU(ownerLabels...)...)
	}
	return dcgmDefs{
		up: e.def("headroom_dcgm_up", "gauge", "dcgm",
			"1 while a DCGM host engine is connected; 0 when libdcgm or the host engine is missing (NVML's GPM values stand).", "node"),
		smActive:     g("headroom_gpu_dcgm_sm_active_ratio", "DCGM_FI_PROF_SM_ACTIVE: share of time at least one warp was resident on an SM, averaged over SMs (0-1)."),
		smOccupancy:  g("headroom_gpu_dcgm_sm_occupancy_ratio", "DCGM_FI_PROF_SM_OCCUPANCY: resident warps over the SMs' maximum (0-1)."),
		tensorActive: g("headroom_gpu_dcgm_tensor_active_ratio", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE: share of cycles the tensor pipes were busy (0-1)."),
		dram:         g("headroom_gpu_dcgm_dram_active_ratio", "DCGM_FI_PROF_DRAM_ACTIVE: share of cycles device memory was sending or receiving data (0-1)."),
		pcieTx:       g("headroom_gpu_pcie_tx_bytes_per_second", "DCGM_FI_PROF_PCIE_TX_BYTES: PCIe bytes the GPU sent per second."),
		pcieRx:       g("headroom_gpu_pcie_rx_bytes_per_second", "DCGM_FI_PROF_PCIE_RX_BYTES: PCIe bytes the GPU received per second."),
		nvlinkTx:     g("headroom_gpu_nvlink_tx_bytes_per_second", "DCGM_FI_PROF_NVLINK_TX_BYTES: NVLink bytes the GPU sent per second, all links."),
		nvlinkRx:     g("headroom_gpu_nvlink_rx_bytes_per_second", "DCGM_FI_PROF_NVLINK_RX_BYTES: NVLink bytes the GPU received per second, all links."),
	}
}

// gatherDCGM emits nothing when the dcgm collector is off, headroom_dcgm_up
// otherwise, and each GPU's profiling fields that DCGM answered.
func (e *Exporter) gatherDCGM(b *builder, s *snapshot.Snapshot) {
	st := s.System.DCGM
	if st == nil {
		return
	}
	d := e.dcgm
	node := b.lp("node", s.Node)
	b.add(d.up, b2f(st.Up), nil, node)
	for i := range s.GPUs {
		g := &s.GPUs[i]
		p := g.Profiling
		if p == nil || g.Lost {
			continue
		}
		l := gpuWideLabels(b, s, node, g)
		b.opt(d.smActive, p.SMActive, l)
		b.opt(d.smOccupancy, p.SMOccupancy, l)
		b.opt(d.tensorActive, p.TensorActive, l)
		b.opt(d.dram, p.DRAMActive, l)
		b.opt(d.pcieTx, p.PCIeTxBytes, l)
		b.opt(d.pcieRx, p.PCIeRxBytes, l)
		b.opt(d.nvlinkTx, p.NVLinkTxBytes, l)
		b.opt(d.nvlinkRx, p.NVLinkRxBytes, l)
	}
}

// gpuWideLabels are the label pairs of a GPU-wide series, as gatherGPU
// builds them: the GPU, and its owner when exactly one container holds it.
func gpuWideLabels(b *builder, s *snapshot.Snapshot, node *dto.LabelPair, g *snapshot.GPU) []*dto.LabelPair {
	var owner snapshot.Owner
	if a := s.Attribution; a != nil && len(a.Owners[g.UUID]) == 1 {
		owner = a.Owners[g.UUID][0]
	}
	base := []*dto.LabelPair{b.lp("gpu", itoa(g.Index)), b.lp("model", g.Name), node, b.lp("uuid", g.UUID)}
	return mergePairs(base, []*dto.LabelPair{b.sharedLP("namespace", owner.Namespace), b.sharedLP("pod", owner.Pod), b.sharedLP("container", owner.Container)})
}

package snapshot

// Part is a change to a snapshot: a collector's reading of the sections it
// owns, or the result of an enrich step. It assigns the fields of its
// sections and touches nothing else.
type Part func(*Snapshot)

// Section names a part of a Snapshot. Collector entries declare with them
// what they own, read and write, and the collector table checks the
// declarations (collector.Table.Validate).
type Section string

// The sections of a snapshot and who fills them in the built-in table.
const (
	// SectionGPUs is System's driver versions and the GPUs with their
	// readings and processes: the nvml source owns it.
	SectionGPUs Section = "gpus"
	// SectionProfiling is System.DCGM and each GPU's Profiling: the dcgm
	// source's enrich step writes it onto NVML's GPUs.
	SectionProfiling Section = "gpus.profiling"
	// SectionProcessOwners is each GPU process's Namespace, Pod and
	// Container: the pods source's enrich step (the attribution join).
	SectionProcessOwners Section = "gpus.processes.owner"
	// SectionAttribution is Attribution: the pods source's join builds
	// it; standalone model servers add their pods to it.
	SectionAttribution Section = "attribution"
	// SectionModelServers is each pod's ModelServer reading: the
	// modelserver source's enrich step.
	SectionModelServers Section = "attribution.pods.model_server"
	// SectionEnergy is Energy: the energy source's enrich step attributes
	// the GPUs' energy to the pods.
	SectionEnergy Section = "energy"
	// SectionZtunnel is Mesh.Ztunnel but its Traffic: the ztunnel source.
	SectionZtunnel Section = "mesh.ztunnel"
	// SectionZtunnelTraffic is Mesh.Ztunnel.Traffic: the ztunnel_ebpf
	// source.
	SectionZtunnelTraffic Section = "mesh.ztunnel.traffic"
)

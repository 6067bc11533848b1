package snapshot

// DCGM is the state of the DCGM source in one sample.
type DCGM struct {
	// Up is true while a DCGM host engine is connected and answering. When
	// false, no GPU has Profiling and NVML's GPM values stand.
	Up bool
}

// SMActivity returns the GPU's SM activity and occupancy (0–1): DCGM's
// profiling fields when present, else NVML's GPM values; nil when neither
// is known.
func (g *GPU) SMActivity() (active, occupancy *float64) {
	active, occupancy = g.SMActive, g.SMOccupancy
	if p := g.Profiling; p != nil {
		if p.SMActive != nil {
			active = p.SMActive
		}
		if p.SMOccupancy != nil {
			occupancy = p.SMOccupancy
		}
	}
	return active, occupancy
}

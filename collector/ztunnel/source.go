package ztunnel

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/cgroups"
	"github.com/headroom-dev/headroom/snapshot"
)

// Source finds ztunnel and reads its container cgroup.
type Source struct {
	finder *Finder
	cg     *cgroups.Reader
	logger *slog.Logger
}

// New returns the ztunnel source.
func New(f *Finder, logger *slog.Logger) *Source {
	return &Source{finder: f, cg: cgroups.NewReader(f.procRoot, f.root), logger: logger}
}

// Collect reports whether ztunnel runs and what its cgroup uses. Not
// finding it is a normal state. It owns Mesh.Ztunnel but its Traffic.
func (s *Source) Collect(ctx context.Context) (collector.Reading, error) {
	found, err := s.finder.Find()
	if err != nil {
		return collector.Reading{}, err
	}
	z := &snapshot.Ztunnel{Present: len(found.PIDs) > 0 || len(found.Cgroups) > 0, Namespace: found.Namespace, Pod: found.Pod, PIDs: found.PIDs}
	var mem *snapshot.ContainerMemory
	for _, dir := range found.Cgroups {
		if err := ctx.Err(); err != nil {
			return collector.Reading{}, err
		}
		st, err := s.cg.Stats(dir)
		if err != nil {
			s.logger.Debug("reading ztunnel cgroup", "cgroup", filepath.Join(s.finder.root, dir), "err", err)
			continue
		}
		if mem == nil {
			mem = &snapshot.ContainerMemory{}
		}
		mem.WorkingSet += st.WorkingSet
		mem.Anon += st.Anon
		mem.File += st.File
		mem.CPUSeconds += st.CPUSeconds
	}
	z.Memory = mem
	return collector.Reading{Own: func(snap *snapshot.Snapshot) {
		if snap.Mesh == nil {
			snap.Mesh = &snapshot.Mesh{}
		}
		if old := snap.Mesh.Ztunnel; old != nil {
			z.Traffic = old.Traffic
		}
		snap.Mesh.Ztunnel = z
	}}, nil
}

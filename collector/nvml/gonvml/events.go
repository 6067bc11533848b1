//go:build cgo

package gonvml

import (
	"context"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/headroom-dev/headroom/collector/nvml"
)

// eventWait is how long one Wait blocks; it bounds how late the watcher
// notices its context ending.
const eventWait = 500 // milliseconds

// waitEvents forwards Xid events until ctx ends, then frees the set and
// closes ch.
func (l *Library) waitEvents(ctx context.Context, set gonvml.EventSet, byHandle map[gonvml.Device]int, ch chan<- nvml.Event) {
	defer close(ch)
	defer func() {
		if l.ready.Load() {
			_ = set.Free()
		}
	}()
	for ctx.Err() == nil && l.ready.Load() {
		data, ret := set.Wait(eventWait)
		switch ret {
		case gonvml.SUCCESS:
		case gonvml.ERROR_TIMEOUT:
			continue
		default:
			// GPU_IS_LOST and friends: the sampler reports the GPU itself;
			// back off so a broken set cannot spin.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if data.EventType&gonvml.EventTypeXidCriticalError == 0 {
			continue
		}
		idx, ok := byHandle[data.Device]
		if !ok {
			idx = -1
		}
		select {
		case ch <- nvml.Event{Index: idx, Xid: data.EventData}:
		case <-ctx.Done():
			return
		}
	}
}

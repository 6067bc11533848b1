package dcgm

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLibrary is an in-memory DCGM: a host engine that can be missing,
// unreachable, or go away, with GPUs and their latest field values. It
// records every call and flags any call made while not connected.
type fakeLibrary struct {
	t *testing.T

	mu         sync.Mutex
	libMissing bool             // libdcgm cannot be loaded
	engineUp   bool             // a host engine answers
	watchErr   error            // Watch fails with it
	readErr    error            // Latest fails with it
	gpus       []GPU            // what GPUs() lists
	values     map[uint][]Value // latest values by DCGM GPU ID
	connected  bool
	watched    []uint
	calls      []string
}

var _ Library = (*fakeLibrary)(nil)

func newFake(t *testing.T) *fakeLibrary {
	f := &fakeLibrary{t: t, engineUp: true, values: map[uint][]Value{}}
	return f
}

func (f *fakeLibrary) record(call string, needConn bool) error {
	f.calls = append(f.calls, call)
	if needConn && !f.connected {
		f.t.Errorf("%s called before a successful Connect", call)
		return ErrNotConnected
	}
	return nil
}

func (f *fakeLibrary) Connect(address string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.record("connect "+address, false)
	switch {
	case f.libMissing:
		return fmt.Errorf("%w: libdcgm.so.4 not found", ErrLibraryNotFound)
	case !f.engineUp:
		return fmt.Errorf("%w: connection refused", ErrUnreachable)
	}
	f.connected = true
	return nil
}

func (f *fakeLibrary) GPUs() ([]GPU, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("gpus", true); err != nil {
		return nil, err
	}
	return slices.Clone(f.gpus), nil
}

func (f *fakeLibrary) Watch(gpus []uint, fields []Field, every time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("watch", true); err != nil {
		return err
	}
	if f.watchErr != nil {
		return f.watchErr
	}
	if !slices.Equal(fields, ProfilingFields()) || every <= 0 {
		f.t.Errorf("Watch(%v, %v, %s): want the profiling fields and a positive interval", gpus, fields, every)
	}
	f.watched = slices.Clone(gpus)
	return nil
}

func (f *fakeLibrary) Latest(gpu uint, fields []Field) ([]Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(fmt.Sprint("latest ", gpu), true); err != nil {
		return nil, err
	}
	switch {
	case !f.engineUp:
		return nil, fmt.Errorf("%w: connection not valid", ErrConnectionLost)
	case f.readErr != nil:
		return nil, f.readErr
	case !slices.Contains(f.watched, gpu):
		f.t.Errorf("Latest(%d) on a GPU that is not watched (%v)", gpu, f.watched)
	}
	out := make([]Value, len(fields))
	for i, fld := range fields {
		out[i] = Value{Field: fld, Blank: true}
		for _, v := range f.values[gpu] {
			if v.Field == fld {
				out[i] = v
			}
		}
	}
	return out, nil
}

func (f *fakeLibrary) Shutdown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.record("shutdown", false)
	f.connected = false
	f.watched = nil
	return nil
}

func (f *fakeLibrary) set(fn func(f *fakeLibrary)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// count returns how many recorded calls start with prefix.
func (f *fakeLibrary) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (f *fakeLibrary) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count returns the number of lines containing s.
func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

package refresh

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
)

func TestStatusTracksStaleness(t *testing.T) {
	t.Parallel()
	var fail atomic.Bool
	l := New("test", Options{Interval: time.Hour, MinGap: time.Millisecond, MaxBackoff: time.Millisecond, Timeout: time.Second},
		func(context.Context) error {
			if fail.Load() {
				return errors.New("down")
			}
			return nil
		}, testutil.Logger())
	ctx := context.Background()
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	first := l.Status()
	if first.LastSuccess.IsZero() || !first.StaleSince.IsZero() {
		t.Fatalf("after success: %+v", first)
	}
	fail.Store(true)
	_ = l.Refresh(ctx)
	_ = l.Refresh(ctx)
	st := l.Status()
	if st.StaleSince.IsZero() || st.Failures != 2 || st.LastSuccess != first.LastSuccess || st.LastErr == nil {
		t.Fatalf("after failures: %+v", st)
	}
	staleSince := st.StaleSince
	_ = l.Refresh(ctx)
	if l.Status().StaleSince != staleSince {
		t.Error("StaleSince moved on a further failure; it must say when staleness began")
	}
	fail.Store(false)
	_ = l.Refresh(ctx)
	if st := l.Status(); !st.StaleSince.IsZero() || st.LastErr != nil || st.Refreshes != 2 {
		t.Errorf("after recovery: %+v", st)
	}
}

func TestRefreshHonoursTimeout(t *testing.T) {
	t.Parallel()
	l := New("slow", Options{Timeout: 10 * time.Millisecond}, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, testutil.Logger())
	if err := l.Refresh(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the refresh cut at its timeout", err)
	}
}

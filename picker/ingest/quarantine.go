package ingest

import (
	"context"
	"log/slog"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// maxQuarantineNotes bounds what one stream remembers having logged.
const maxQuarantineNotes = 256

// quarantineLog logs each dropped part of a stream's reports once at warn
// (the agent resends the same values every report, up to ten a second)
// and every repeat at debug.
type quarantineLog struct {
	logger *slog.Logger
	seen   map[telemetryv1.Dropped]bool
}

func newQuarantineLog(logger *slog.Logger, node string) *quarantineLog {
	return &quarantineLog{logger: logger.With("node", cut(node)), seen: map[telemetryv1.Dropped]bool{}}
}

func (q *quarantineLog) note(d telemetryv1.Dropped) {
	key := telemetryv1.Dropped{Section: d.Section, Reason: d.Reason, Part: d.Part}
	level := slog.LevelDebug
	if !q.seen[key] && len(q.seen) < maxQuarantineNotes {
		q.seen[key] = true
		level = slog.LevelWarn
	}
	q.logger.Log(context.Background(), level, "left out part of a node report for an impossible value; the rest of the report counts",
		"section", d.Section, "reason", d.Reason, "part", d.Part, "detail", d.Detail)
}

// cut shortens a string from a report for a log line.
func cut(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

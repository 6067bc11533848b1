package ingest

import (
	"context"
	"log/slog"
)

// maxQuarantineNotes bounds what one stream remembers having logged.
const maxQuarantineNotes = 256

// quarantineLog logs each dropped part of a stream's reports once at warn
// (the agent resends the same values every report, up to ten a second)
// and every repeat at debug.
type quarantineLog struct {
	logger *slog.Logger
	seen   map[Dropped]bool
}

func newQuarantineLog(logger *slog.Logger, node string) *quarantineLog {
	return &quarantineLog{logger: logger.With("node", cut(node)), seen: map[Dropped]bool{}}
}

func (q *quarantineLog) note(d Dropped) {
	key := Dropped{Section: d.Section, Reason: d.Reason, Part: d.Part}
	level := slog.LevelDebug
	if !q.seen[key] && len(q.seen) < maxQuarantineNotes {
		q.seen[key] = true
		level = slog.LevelWarn
	}
	q.logger.Log(context.Background(), level, "left out part of a node report for an impossible value; the rest of the report counts",
		"section", d.Section, "reason", d.Reason, "part", d.Part, "detail", d.Detail)
}

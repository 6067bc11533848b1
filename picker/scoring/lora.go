package scoring

import (
	"slices"

	"github.com/headroom-dev/headroom/picker/store"
)

// LoRAScorer keeps a LoRA adapter's requests on the pods that have it: 1
// where the adapter is running or waiting (loaded or about to be), 0.5
// where the server has room for another adapter, 0 where it is full or
// reports no adapter state. Requests for no adapter score 1 everywhere.
type LoRAScorer struct{}

// Name implements [Scorer].
func (LoRAScorer) Name() string { return "lora-affinity" }

// Score implements [Scorer].
func (LoRAScorer) Score(r *Request, eps []*store.Endpoint, scores []float64) {
	if r.LoRA == "" {
		for i := range eps {
			scores[i] = 1
		}
		return
	}
	for i, ep := range eps {
		scores[i] = loraScore(r.LoRA, ep)
	}
}

func loraScore(adapter string, ep *store.Endpoint) float64 {
	if adapter == "" {
		return 1
	}
	l := ep.ModelServer().GetLora()
	if l == nil {
		return 0
	}
	if slices.Contains(l.GetRunning(), adapter) || slices.Contains(l.GetWaiting(), adapter) {
		return 1
	}
	if int(l.GetMaxAdapters()) > loadedAdapters(l.GetRunning(), l.GetWaiting()) {
		return 0.5
	}
	return 0
}

// loadedAdapters counts the distinct adapters in running and waiting.
func loadedAdapters(running, waiting []string) int {
	n := 0
	for i, a := range running {
		if !slices.Contains(running[:i], a) {
			n++
		}
	}
	for i, a := range waiting {
		if !slices.Contains(running, a) && !slices.Contains(waiting[:i], a) {
			n++
		}
	}
	return n
}

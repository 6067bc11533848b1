package gateway

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkGateway is one streamed request (20 events, a 2 KB prompt)
// through the gateway, with the real picker in ext_proc mode and with
// round robin. The client, the picker and the model server run in the
// same process: compare the two modes rather than read absolute numbers.
func BenchmarkGateway(b *testing.B) {
	for _, mode := range []string{"ext_proc", "round-robin"} {
		b.Run(mode, func(b *testing.B) {
			m := startModel(b, func(m *modelServer) { m.events = 20 })
			o := Options{Endpoints: []string{m.addr}}
			if mode == "ext_proc" {
				addr, _ := startPicker(b, newDecider(m.addr), "")
				o.Pickers = []string{addr}
			} else {
				o.Policy = RoundRobin()
			}
			_, url := startGateway(b, o)
			c := client(b)
			body := chatBody(2000, true)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Post(url+"/v1/chat/completions", "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

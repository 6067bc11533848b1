package main

import (
	"fmt"
	"testing"
)

func TestPodIPDistinctLoopback(t *testing.T) {
	for _, n := range []int{1, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			seen := map[string]int{}
			for i := range n {
				ip := podIP(i)
				if !ip.IsLoopback() || ip[len(ip)-1] == 0 {
					t.Fatalf("server %d: %s is not a usable loopback address", i, ip)
				}
				if j, ok := seen[ip.String()]; ok {
					t.Fatalf("servers %d and %d share %s", j, i, ip)
				}
				seen[ip.String()] = i
			}
		})
	}
}

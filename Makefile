# headroom — build, test and run. `make help` lists the targets.

GO          ?= go
BIN         := bin
CACHE       := .cache
TOOLS       := $(CACHE)/bin
STATICCHECK := $(TOOLS)/staticcheck
STATICCHECK_VERSION := v0.8.2

# go-nvml's header marks functions deprecated; the warnings are noise here.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
export CGO_ENABLED ?= 1

# kube-apiserver and etcd for envtest (hack/envtest-assets.sh builds them).
export KUBEBUILDER_ASSETS := $(CURDIR)/$(CACHE)/envtest

.PHONY: help build test test-nocgo envtest-assets chart-tools reference-tools lint generate check-generated vmlinux demo bench bench-agent bench-stream bench-picker bench-routing bench-system bench-mesh bench-hostile realgpu-build clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build the commands into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

test: envtest-assets chart-tools reference-tools ## unit and integration tests, race detector on, plus a cgo-free build and test
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory test-nocgo

test-nocgo: envtest-assets chart-tools ## build and test everything that does not need cgo
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./...

envtest-assets: ## build kube-apiserver and link etcd into .cache/envtest for envtest (cached)
	GO=$(GO) ENVTEST_ASSETS_DIR=$(KUBEBUILDER_ASSETS) ./hack/envtest-assets.sh >/dev/null

chart-tools: ## build helm, helm-unittest, kubeconform and offline schemas into .cache/chart-tools for test/chart (cached)
	GO=$(GO) CHART_TOOLS_DIR=$(CURDIR)/$(CACHE)/chart-tools ./hack/chart-tools.sh >/dev/null

reference-tools: ## build the GIE endpoint picker (EPP) and llm-d-inference-sim into .cache/reference for bench-routing (cached)
	GO=$(GO) REFERENCE_TOOLS_DIR=$(CURDIR)/$(CACHE)/reference ./hack/reference-tools.sh >/dev/null

$(STATICCHECK):
	GOBIN=$(abspath $(TOOLS)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

generate: ## regenerate generated code (protoc; clang and libbpf-dev for bpf/)
	$(GO) generate ./...

check-generated: generate ## fail when committed generated code is stale
	@git diff --exit-code || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@untracked=$$(git status --porcelain --untracked-files=all -- bpf proto | grep '^??' || true); \
	  if [ -n "$$untracked" ]; then echo "generated files not committed:"; echo "$$untracked"; exit 1; fi

vmlinux: ## refresh bpf/include/vmlinux.h from this kernel's BTF (bpftool); CO-RE, so any recent kernel does
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/include/vmlinux.h

demo: ## run the whole thing on simulated GPUs (no GPU, no cluster)
	$(GO) run ./cmd/headroom-demo $(DEMO_FLAGS)

bench: ## Go benchmarks (docs/benchmarks.md)
	$(GO) test -run='^$$' -bench=. -benchmem -count=$(or $(COUNT),1) ./...

bench-agent: build ## agent load run: RSS, CPU and /metrics latency on 8 GPUs x 100 processes
	$(GO) build -o $(BIN)/agentload ./test/load/agentload
	$(BIN)/agentload --agent=$(BIN)/headroom-agent $(AGENTLOAD_FLAGS)

bench-picker: ## picker request-path load runs against a pass-through ext_proc server (4 KB at 5,000/s, 220 KB at 100/s)
	$(GO) build -o $(BIN)/extprocload ./test/load/extprocload
	$(BIN)/extprocload -rate 5000 -body 4096 $(EXTPROCLOAD_FLAGS)
	$(BIN)/extprocload -rate 100 -body 225280 $(EXTPROCLOAD_FLAGS)

bench-stream: ## telemetry load runs: picker ingest at 1,000 nodes (1 and 10 Hz), polling vs streaming 100 pods at 50 ms
	$(GO) build -o $(BIN)/ingestload ./test/load/ingestload
	$(GO) build -o $(BIN)/pollstream ./test/load/pollstream
	$(BIN)/ingestload -nodes 1000 -rate 1 $(INGESTLOAD_FLAGS)
	$(BIN)/ingestload -nodes 1000 -rate 10 $(INGESTLOAD_FLAGS)
	$(BIN)/pollstream -pods 100 -period 50ms $(POLLSTREAM_FLAGS)

bench-routing: envtest-assets reference-tools ## routing quality against the real GIE EPP, on sim/modelsim and llm-d-inference-sim, 3 seeds a cell (hours; prints its estimate; ROUTING_FLAGS for a subset, docs/benchmarks.md)
	$(GO) build -o $(BIN)/routing ./test/load/routing
	$(BIN)/routing -markdown $(BIN)/routing.md -plots docs/img -log-dir $(BIN)/routing-logs $(ROUTING_FLAGS)
	cat $(BIN)/routing.md

bench-system: ## the demo system's own cost: gateway + picker throughput, CPU per request, the picker's share of latency
	$(GO) build -o $(BIN)/systemload ./test/load/systemload
	$(BIN)/systemload $(SYSTEMLOAD_FLAGS)

bench-hostile: ## the hostile load run (docs/reliability.md): abandoned and stalled ext_proc streams, fake tokens, a cross-node agent, under 100 req/s of well-behaved traffic; HOSTILE_ATTACKS=abandoned,stalled without envtest
	CGO_ENABLED=0 $(GO) build -o $(BIN)/headroom-picker ./cmd/headroom-picker
	HEADROOM_BENCH_HOSTILE=1 HEADROOM_HOSTILE_PICKER=$(CURDIR)/$(BIN)/headroom-picker HEADROOM_HOSTILE_ATTACKS=$(or $(HOSTILE_ATTACKS),all) \
	  $(GO) test -count=1 -timeout 30m -run TestHostileLoad -v ./test/load/hostile

bench-mesh: ## the eBPF programs' own cost (kernel BPF stats) and the CPU of a loopback load with them off and on; needs root
	HEADROOM_BENCH_MESH=1 $(GO) test -count=1 -run TestMeshBench -v ./bpf

realgpu-build: ## build the agent and the NVML test with cgo into bin/gpu for hack/realgpu.sh on a GPU machine
	mkdir -p $(BIN)/gpu
	CGO_ENABLED=1 $(GO) build -ldflags='-s -w' -o $(BIN)/gpu/headroom-agent ./cmd/headroom-agent
	CGO_ENABLED=1 $(GO) test -c -o $(BIN)/gpu/gonvml.test ./collector/nvml/gonvml

clean: ## remove build outputs and the tool cache
	rm -rf $(BIN) $(CACHE)

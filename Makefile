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
# grpcnotrace leaves out gRPC's golang.org/x/net/trace, whose html/template
# calls methods by name and so makes the linker keep every exported method
# of every type: the agent's code is 5 MB smaller and so is its RSS
# (docs/benchmarks.md). Nothing here serves gRPC's /debug/requests.
export GOFLAGS += -tags=grpcnotrace

# kube-apiserver and etcd for envtest (hack/envtest-assets.sh builds them).
export KUBEBUILDER_ASSETS := $(CURDIR)/$(CACHE)/envtest

# The release version: the chart's version and appVersion and the images'
# default tag. test/chart's TestVersionsInStep keeps Chart.yaml, this line
# and the docs in step; the release workflow refuses a tag other than
# v$(VERSION).
VERSION := 0.1.0
# What the binaries report (--version, headroom_build_info): git describe,
# the commit, and the commit's date as the build date, so the same commit
# builds the same bytes.
GIT_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
GIT_VERSION := $(GIT_VERSION)
REVISION := $(REVISION)
export SOURCE_DATE_EPOCH := $(SOURCE_DATE_EPOCH)
BUILD_DATE := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
VERSION_PKG := github.com/headroom-dev/headroom/internal/version
LDFLAGS := -X $(VERSION_PKG).version=$(GIT_VERSION) -X $(VERSION_PKG).revision=$(REVISION) -X $(VERSION_PKG).buildDate=$(BUILD_DATE)

# Images (hack/imagebuild, docs/images.md).
REGISTRY  ?= ghcr.io/headroom-dev
IMAGE_TAG ?= $(VERSION)
PLATFORMS ?= linux/amd64,linux/arm64
IMAGES    := $(BIN)/images
IMAGEBUILD = $(GO) run ./hack/imagebuild
IMAGEBUILD_FLAGS = --registry=$(REGISTRY) --tag=$(IMAGE_TAG) --version=$(GIT_VERSION) --revision=$(REVISION) \
	--source-date-epoch=$(SOURCE_DATE_EPOCH) --out=$(IMAGES) --cache=$(CACHE)/debs
CHART_DIR := $(BIN)/chart
HELM      := $(CACHE)/chart-tools/bin/helm

# Release tools, built once into .cache/bin (docs/release.md).
ACTIONLINT := $(TOOLS)/actionlint
ACTIONLINT_VERSION := v1.7.12
SYFT := $(TOOLS)/syft
SYFT_VERSION := v1.57.2
COSIGN := $(TOOLS)/cosign
COSIGN_VERSION := v2.6.5

.PHONY: help build test test-quick test-nocgo test-deps envtest-assets chart-tools reference-tools lint images images-lock images-reproducible test-images registry-login push-images chart-package push-chart sbom sign release-check generate check-generated vmlinux demo bench bench-agent bench-stream bench-picker bench-routing bench-system bench-mesh bench-hostile realgpu-build clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build the commands into bin/, version stamped in (bin/headroom-agent --version)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test: test-deps envtest-assets chart-tools reference-tools ## unit and integration tests, race detector on, plus a cgo-free build and test
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory test-nocgo

test-quick: ## the edit-test loop: go test -short (no API server, Prometheus, chart tools or image builds; no race detector)
	$(GO) test -short -count=1 ./...

test-nocgo: test-deps envtest-assets chart-tools ## build and test everything that does not need cgo
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) test -count=1 ./...

test-deps: ## Prometheus and promtool for test/e2e and test/chart (Debian's prometheus, installed as root when missing)
	@./hack/need.sh prometheus prometheus promtool prometheus

envtest-assets: ## build kube-apiserver and link etcd into .cache/envtest for envtest (cached)
	GO=$(GO) ENVTEST_ASSETS_DIR=$(KUBEBUILDER_ASSETS) ./hack/envtest-assets.sh >/dev/null

chart-tools: ## build helm, helm-unittest, kubeconform and offline schemas into .cache/chart-tools for test/chart (cached)
	GO=$(GO) CHART_TOOLS_DIR=$(CURDIR)/$(CACHE)/chart-tools ./hack/chart-tools.sh >/dev/null

reference-tools: ## build the GIE endpoint picker (EPP) and llm-d-inference-sim into .cache/reference for bench-routing (cached)
	GO=$(GO) REFERENCE_TOOLS_DIR=$(CURDIR)/$(CACHE)/reference ./hack/reference-tools.sh >/dev/null

$(STATICCHECK):
	GOBIN=$(abspath $(TOOLS)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(ACTIONLINT):
	GOBIN=$(abspath $(TOOLS)) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

lint: $(STATICCHECK) $(ACTIONLINT) ## gofmt, go vet, staticcheck and actionlint (the GitHub workflows)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(ACTIONLINT) -shellcheck= -pyflakes=

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

# The agent is built with cgo: the other architecture needs Debian's cross
# C compiler and C library headers.
GOHOSTARCH := $(shell $(GO) env GOHOSTARCH)
OTHER_ARCH := $(if $(filter amd64,$(GOHOSTARCH)),arm64,amd64)
CROSS_arm64 := aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu /usr/aarch64-linux-gnu/include/stdio.h libc6-dev-arm64-cross
CROSS_amd64 := x86_64-linux-gnu-gcc gcc-x86-64-linux-gnu /usr/x86_64-linux-gnu/include/stdio.h libc6-dev-amd64-cross

images: ## OCI archives of headroom-agent and headroom-picker, linux/amd64 + linux/arm64, in bin/images (docs/images.md)
	$(if $(findstring linux/$(OTHER_ARCH),$(PLATFORMS)),@./hack/need.sh $(CROSS_$(OTHER_ARCH)))
	$(IMAGEBUILD) build $(IMAGEBUILD_FLAGS) --platforms=$(PLATFORMS)

images-lock: ## refresh images/debian.lock: the Debian packages of the image bases, by version and SHA-256
	./hack/debian-lock.sh

images-reproducible: images ## build the images a second time from an empty Go build cache and compare the digests
	$(IMAGEBUILD) digest --out=$(IMAGES) > $(BIN)/digests.first
	cache=$$(mktemp -d) && GOCACHE=$$cache $(IMAGEBUILD) build $(IMAGEBUILD_FLAGS) --platforms=$(PLATFORMS) --out=$(BIN)/images-again; \
	  status=$$?; rm -rf $$cache; exit $$status
	$(IMAGEBUILD) digest --out=$(BIN)/images-again > $(BIN)/digests.second
	diff $(BIN)/digests.first $(BIN)/digests.second && cat $(BIN)/digests.first

QEMU_amd64 := qemu-x86_64-static
QEMU_arm64 := qemu-aarch64-static

test-images: ## run test/image against bin/images (make images): the host's platform natively, the other's --version under qemu
	@./hack/need.sh $(QEMU_$(OTHER_ARCH)) qemu-user-static
	HEADROOM_TEST_IMAGES=$(abspath $(IMAGES)) $(GO) test -count=1 -run TestImages -v ./test/image

registry-login: ## store REGISTRY_USERNAME/REGISTRY_PASSWORD for $(REGISTRY)'s host in the Docker config (push, helm, syft, cosign read it)
	@$(IMAGEBUILD) login --registry=$(REGISTRY)

push-images: ## push bin/images to $(REGISTRY) as :$(IMAGE_TAG), record each digest in bin/images/*.ref (after registry-login or docker login)
	$(IMAGEBUILD) push $(IMAGEBUILD_FLAGS)

chart-package: chart-tools ## package the chart into bin/chart/headroom-$(VERSION).tgz
	$(HELM) package charts/headroom --version $(VERSION) --app-version $(VERSION) --destination $(CHART_DIR)

# helm reads the same Docker configuration as the other tools.
DOCKER_CONFIG_FILE = $(or $(DOCKER_CONFIG),$(HOME)/.docker)/config.json

push-chart: chart-package ## push the chart to oci://$(REGISTRY)/charts, record its digest in bin/chart/headroom.ref
	HELM_REGISTRY_CONFIG=$(DOCKER_CONFIG_FILE) $(HELM) push $(CHART_DIR)/headroom-$(VERSION).tgz oci://$(REGISTRY)/charts $(HELM_PUSH_FLAGS) 2>&1 | tee $(CHART_DIR)/push.log
	@digest=$$(sed -n 's/^Digest: //p' $(CHART_DIR)/push.log); test -n "$$digest" || { echo "no digest in helm push output"; exit 1; }; \
	  echo "$(REGISTRY)/charts/headroom@$$digest" > $(CHART_DIR)/headroom.ref

$(SYFT):
	GOBIN=$(abspath $(TOOLS)) $(GO) install github.com/anchore/syft/cmd/syft@$(SYFT_VERSION)

$(COSIGN):
	GOBIN=$(abspath $(TOOLS)) $(GO) install github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN_VERSION)

# The pushed images by digest (push-images writes them): name@sha256 of
# each index (.ref) and of each platform image (.<os>-<arch>.ref).
PUSHED_PLATFORMS = $(wildcard $(IMAGES)/*.linux-*.ref)

sbom: $(SYFT) ## an SPDX SBOM of each pushed platform image, into bin/images/*.spdx.json (after push-images)
	@test -n "$(PUSHED_PLATFORMS)" || { echo "no $(IMAGES)/*.linux-*.ref: run make push-images first"; exit 1; }
	@for ref in $(PUSHED_PLATFORMS); do out=$${ref%.ref}.spdx.json; echo "sbom: $$out"; \
	  $(SYFT) scan --quiet registry:$$(cat $$ref) -o spdx-json=$$out || exit 1; done

sign: $(COSIGN) ## keyless cosign: sign the pushed images (index and platforms) and chart, attach each SBOM as a signed attestation
	@for img in headroom-agent headroom-picker; do $(COSIGN) sign --yes --recursive $$(cat $(IMAGES)/$$img.ref) || exit 1; done
	@for ref in $(PUSHED_PLATFORMS); do \
	  $(COSIGN) attest --yes --type spdxjson --predicate $${ref%.ref}.spdx.json $$(cat $$ref) || exit 1; done
	$(COSIGN) sign --yes $$(cat $(CHART_DIR)/headroom.ref)

release-check: ## in a release: the pushed tag (GITHUB_REF_NAME) must be v$(VERSION)
	@test "$(GITHUB_REF_NAME)" = "v$(VERSION)" || { echo "tag $(GITHUB_REF_NAME) is not v$(VERSION) (Makefile VERSION, Chart.yaml)"; exit 1; }

clean: ## remove build outputs and the tool cache
	rm -rf $(BIN) $(CACHE)

// Package chart tests the Helm chart in charts/headroom with real tools,
// offline: helm lint --strict, the chart's helm-unittest suites,
// kubeconform in strict mode against schemas generated from the
// Kubernetes OpenAPI and the CRDs, helm install into envtest's real
// kube-apiserver, promtool check and test on the alert rules, and checks
// that every metric a dashboard or alert reads and every value is
// documented.
//
// The tools are built once by `make chart-tools` (hack/chart-tools.sh)
// into .cache/chart-tools, or where CHART_TOOLS_DIR points. Without them
// the tests fail rather than pass unchecked; -short skips them.
package chart

// Package podresources reads which containers hold which GPUs from the
// kubelet's pod-resources API (List, GetAllocatableResources) on its own
// refresh clock, caches the answer, and parses every device-ID form the
// NVIDIA device plugin and the cloud variants produce. Nothing here runs per
// scrape or per sample.
package podresources

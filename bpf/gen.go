package bpf

// ztunnel.c compiles for both little-endian targets the agent ships for;
// the object is CO-RE, so include/vmlinux.h (bpftool btf dump of a recent
// kernel, refreshed with make vmlinux) need not match the node's kernel.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type flow_key -type flow_val ztunnel ztunnel.c -- -I./include

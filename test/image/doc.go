// Package image tests the container images `make images` builds
// (internal/imagebuild): it builds them for this machine's architecture
// (or takes the archives HEADROOM_TEST_IMAGES points at), checks each
// image's configuration and files, builds them again to prove the same
// inputs give the same digests, and, as root, unpacks each into a root
// file system and runs its entrypoint there in its own mount and PID
// namespace (unshare + chroot, as the image's user): --version must
// answer, the picker must serve gRPC health with static endpoints and the
// agent /metrics with no NVIDIA library present.
//
// -short leaves it out (it compiles both commands), and so does a build
// without cgo (the agent's image needs a C toolchain; make test-nocgo
// would only build the same images again).
package image

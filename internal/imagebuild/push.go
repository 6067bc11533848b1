package imagebuild

import (
	"context"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// LayoutIndex returns the image index an OCI layout written by Build
// holds (its only entry).
func LayoutIndex(dir string) (v1.ImageIndex, error) {
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s: %d entries in index.json, want the one image index Build writes", dir, len(m.Manifests))
	}
	return top.ImageIndex(m.Manifests[0].Digest)
}

// Credentials picks the registry credentials: REGISTRY_USERNAME and
// REGISTRY_PASSWORD when set (CI), else the Docker configuration's
// (docker login, crane auth login), else anonymous.
func Credentials(ref name.Reference) (authn.Authenticator, error) {
	if u, p := os.Getenv("REGISTRY_USERNAME"), os.Getenv("REGISTRY_PASSWORD"); u != "" && p != "" {
		return &authn.Basic{Username: u, Password: p}, nil
	}
	return authn.DefaultKeychain.Resolve(ref.Context())
}

// Push uploads the image index of an OCI layout to ref (every platform
// image, then the index) and returns its digest, which is the layout's:
// nothing is rebuilt or re-compressed on the way. insecure allows plain
// HTTP (a registry on loopback in tests).
func Push(ctx context.Context, dir, ref string, insecure bool) (v1.Hash, error) {
	idx, err := LayoutIndex(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	auth, err := Credentials(r)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("credentials for %s: %w", r.Context().RegistryStr(), err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithAuth(auth), remote.WithContext(ctx)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", r, err)
	}
	return idx.Digest()
}

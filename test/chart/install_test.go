package chart

import (
	"bytes"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/headroom-dev/headroom/internal/testenv"
)

// TestInstall installs the chart with helm into a real kube-apiserver
// (envtest, with the CRDs it renders objects of), checks every object of
// the release exists, that its ServiceAccounts may do what they need and
// no more, that an agent and a picker run with its flags, certificate and
// tokens connect, upgrades it (the generated certificate must stay), and
// uninstalls it.
func TestInstall(t *testing.T) {
	tl := tools(t)
	_, cfg := testenv.Start(t, testenv.WithCRDs(tl.CRDs, tl.GatewayCRDs))
	kubeconfig := testenv.Kubeconfig(t, cfg)
	client := newObjectClient(t, cfg)

	for _, tc := range []struct{ release, namespace, values string }{
		{"headroom", "gpu", "default-values.yaml"},
		{"full", "models", "all-on-values.yaml"},
	} {
		t.Run(tc.values, func(t *testing.T) {
			helm := func(args ...string) []byte {
				return run(t, nil, tl.Helm, append(args, "--kubeconfig", kubeconfig, "--namespace", tc.namespace)...)
			}
			values := filepath.Join(tl.Chart, "ci", tc.values)
			helm("install", tc.release, tl.Chart, "--create-namespace", "-f", values)
			objs := splitDocs(t, helm("get", "manifest", tc.release))
			if len(objs) < 10 {
				t.Fatalf("release %s has %d objects, want the whole chart", tc.release, len(objs))
			}
			for _, o := range objs {
				client.get(t, o, tc.namespace)
			}
			secret := func() []byte {
				for _, o := range objs {
					if o["kind"] == "Secret" {
						got := client.get(t, o, tc.namespace)
						crt, _, _ := unstructured.NestedString(got.Object, "data", "tls.crt")
						return []byte(crt)
					}
				}
				t.Fatal("no Secret in the release")
				return nil
			}
			if tc.values == "default-values.yaml" {
				checkRBAC(t, cfg, tc.release, tc.namespace)
				checkWiring(t, cfg, objs, tc.release, tc.namespace)
			}
			before := secret()
			helm("upgrade", tc.release, tl.Chart, "-f", values)
			if after := secret(); !bytes.Equal(before, after) {
				t.Error("helm upgrade replaced the ingest certificate: agents would distrust the pickers")
			}
			helm("uninstall", tc.release, "--wait")
			for _, o := range objs {
				if client.exists(t, o, tc.namespace) {
					t.Errorf("%s %s still exists after helm uninstall", o["kind"], name(o))
				}
			}
		})
	}
}

// objectClient reads any kind by its apiVersion and kind.
type objectClient struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newObjectClient(t *testing.T, cfg *rest.Config) objectClient {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return objectClient{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
}

func name(o map[string]any) string {
	n, _, _ := unstructured.NestedString(o, "metadata", "name")
	return n
}

func (c objectClient) resource(t *testing.T, o map[string]any, releaseNS string) dynamic.ResourceInterface {
	t.Helper()
	u := unstructured.Unstructured{Object: o}
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version)
	if err != nil {
		t.Fatalf("%s: %v", gvk, err)
	}
	if m.Scope.Name() != "namespace" {
		return c.dyn.Resource(m.Resource)
	}
	ns := u.GetNamespace()
	if ns == "" {
		ns = releaseNS
	}
	return c.dyn.Resource(m.Resource).Namespace(ns)
}

func (c objectClient) get(t *testing.T, o map[string]any, releaseNS string) *unstructured.Unstructured {
	t.Helper()
	got, err := c.resource(t, o, releaseNS).Get(t.Context(), name(o), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("%s %s was not created: %v", o["kind"], name(o), err)
	}
	return got
}

func (c objectClient) exists(t *testing.T, o map[string]any, releaseNS string) bool {
	t.Helper()
	_, err := c.resource(t, o, releaseNS).Get(t.Context(), name(o), metav1.GetOptions{})
	return err == nil
}

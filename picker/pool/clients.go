package pool

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// The clients here are what the picker needs and no more. client-go's
// typed clientset (k8s.io/client-go/kubernetes) and its informer factories
// register and link every Kubernetes API group, which more than doubles
// the picker's binary; dynamicinformer pulls in that factory too.

// userAgent names the picker in the API server's audit log and metrics.
const userAgent = "headroom-picker"

// podResource names pods in informer descriptions and errors.
var podResource = corev1.SchemeGroupVersion.WithResource("pods")

// podClient lists and watches the pods of one namespace through a REST
// client whose scheme holds only core/v1 (corev1.AddToScheme also adds the
// meta/v1 list options, watch events and Status the requests and answers
// need). It asks for protobuf, accepting JSON, as the typed clientset did.
type podClient struct {
	rest      *rest.RESTClient
	params    runtime.ParameterCodec
	namespace string
}

func newPodClient(cfg *rest.Config, namespace string) (*podClient, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("pool: core/v1 scheme: %w", err)
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	c.ContentType = runtime.ContentTypeProtobuf // pods: smaller and cheaper to decode
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	rc, err := rest.RESTClientFor(rest.AddUserAgent(c, userAgent))
	if err != nil {
		return nil, fmt.Errorf("pool: pods client: %w", err)
	}
	return &podClient{rest: rc, params: runtime.NewParameterCodec(scheme), namespace: namespace}, nil
}

// list is GET /api/v1/namespaces/<ns>/pods.
func (c *podClient) list(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	list := &corev1.PodList{}
	err := c.rest.Get().Namespace(c.namespace).Resource(podResource.Resource).
		VersionedParams(&opts, c.params).Timeout(timeoutOf(opts)).
		Do(ctx).Into(list)
	return list, err
}

// watch is GET /api/v1/namespaces/<ns>/pods?watch=true.
func (c *podClient) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rest.Get().Namespace(c.namespace).Resource(podResource.Resource).
		VersionedParams(&opts, c.params).Timeout(timeoutOf(opts)).
		Watch(ctx)
}

// listWatch lists and watches the pods that tweak selects.
func (c *podClient) listWatch(tweak func(*metav1.ListOptions)) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return c.list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return c.watch(ctx, o)
		},
	}
}

// timeoutOf is the client-side timeout a list or watch asks for, as the
// typed clients derive it.
func timeoutOf(o metav1.ListOptions) time.Duration {
	if o.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*o.TimeoutSeconds) * time.Second
}

// newDynamicClient is a dynamic client that names the picker.
func newDynamicClient(cfg *rest.Config) (dynamic.Interface, error) {
	return dynamic.NewForConfig(rest.AddUserAgent(rest.CopyConfig(cfg), userAgent))
}

// dynamicListWatch lists and watches one resource of one namespace as
// unstructured objects; tweak, when not nil, narrows the list options.
func dynamicListWatch(dyn dynamic.Interface, gvr schema.GroupVersionResource, namespace string, tweak func(*metav1.ListOptions)) *cache.ListWatch {
	res := dyn.Resource(gvr).Namespace(namespace)
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if tweak != nil {
				tweak(&o)
			}
			return res.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if tweak != nil {
				tweak(&o)
			}
			return res.Watch(ctx, o)
		},
	}
}

// newInformer is a shared informer with no indexers over lw, holding
// objects like example, described as gvr in its logs. Its reflector
// streams the initial list over a watch where the WatchListClient feature
// is on, as the generated and dynamic informers do with real clients.
func newInformer(lw cache.ListerWatcher, example runtime.Object, gvr schema.GroupVersionResource, resync time.Duration) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{
		ResyncPeriod:      resync,
		Indexers:          cache.Indexers{},
		ObjectDescription: gvr.String(),
	})
}

// newDynamicInformer is newInformer over dynamicListWatch.
func newDynamicInformer(dyn dynamic.Interface, gvr schema.GroupVersionResource, namespace string, resync time.Duration, tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	return newInformer(dynamicListWatch(dyn, gvr, namespace, tweak), &unstructured.Unstructured{}, gvr, resync)
}

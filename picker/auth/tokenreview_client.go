package auth

import (
	"context"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// tokenReviewClient creates TokenReviews (POST
// /apis/authentication.k8s.io/v1/tokenreviews) through a REST client whose
// scheme holds only authentication.k8s.io/v1. client-go's typed clientset
// does the same but links every Kubernetes API group into the picker.
type tokenReviewClient struct {
	rest   *rest.RESTClient
	params runtime.ParameterCodec
}

var _ TokenReviewer = (*tokenReviewClient)(nil)

// NewTokenReviewClient returns a TokenReviewer that asks the API server cfg
// points at. It needs create on tokenreviews.authentication.k8s.io.
func NewTokenReviewClient(cfg *rest.Config) (TokenReviewer, error) {
	scheme := runtime.NewScheme()
	if err := authnv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("token review client: scheme: %w", err)
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/apis"
	c.GroupVersion = &authnv1.SchemeGroupVersion
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	rc, err := rest.RESTClientFor(rest.AddUserAgent(c, "headroom-picker"))
	if err != nil {
		return nil, fmt.Errorf("token review client: %w", err)
	}
	return &tokenReviewClient{rest: rc, params: runtime.NewParameterCodec(scheme)}, nil
}

// Create implements TokenReviewer. Like the typed client it sends
// protobuf unless cfg names a content type.
func (c *tokenReviewClient) Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error) {
	out := &authnv1.TokenReview{}
	err := c.rest.Post().UseProtobufAsDefault().Resource("tokenreviews").
		VersionedParams(&opts, c.params).Body(tr).
		Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

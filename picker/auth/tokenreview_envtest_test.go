package auth

import (
	"context"
	"sync"

	"github.com/headroom-dev/headroom/internal/testenv"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Helpers for tokenreview_test.go beyond internal/testenv's.

// rawReview asks the API server directly, bypassing the authenticator.
func rawReview(ctx context.Context, c *testenv.Cluster, token string) (authnv1.TokenReviewStatus, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{DefaultAudience}}}
	resp, err := c.CS.AuthenticationV1().TokenReviews().Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		return authnv1.TokenReviewStatus{}, err
	}
	return resp.Status, nil
}

// countingReviewer wraps a real TokenReviewer and counts the reviews.
type countingReviewer struct {
	TokenReviewer
	mu sync.Mutex
	n  int
}

func (c *countingReviewer) Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.TokenReviewer.Create(ctx, tr, opts)
}

func (c *countingReviewer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

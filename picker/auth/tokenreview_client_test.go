package auth

import (
	"reflect"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ownClientAgrees checks that NewTokenReviewClient, the picker's slim
// client, gets the same answers from the API server as client-go's typed
// clientset for a valid pod-bound token, a token that is not a JWT and a
// valid token for the wrong audience.
func (f *tokenFixture) ownClientAgrees(t *testing.T) {
	own, err := NewTokenReviewClient(f.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	typed := f.c.CS.AuthenticationV1().TokenReviews()
	cases := []struct {
		name, token, audience string
		authenticated         bool
	}{
		{"pod-bound token", f.agentToken, DefaultAudience, true},
		{"not a token", "not-a-jwt", DefaultAudience, false},
		{"other audience", f.agentToken, "someone-else", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: tc.token, Audiences: []string{tc.audience}}}
			got, err := own.Create(t.Context(), tr.DeepCopy(), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want, err := typed.Create(t.Context(), tr.DeepCopy(), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Authenticated != tc.authenticated {
				t.Errorf("authenticated = %v, want %v (error %q)", got.Status.Authenticated, tc.authenticated, got.Status.Error)
			}
			if !reflect.DeepEqual(got.Status, want.Status) {
				t.Errorf("status through NewTokenReviewClient\n%+v\ndiffers from the typed clientset's\n%+v", got.Status, want.Status)
			}
		})
	}
	if _, err := own.Create(t.Context(), &authnv1.TokenReview{}, metav1.CreateOptions{}); err == nil {
		t.Error("a TokenReview with no token: nil error, want the API server's refusal")
	} else {
		t.Logf("no token: %v", err)
	}
}

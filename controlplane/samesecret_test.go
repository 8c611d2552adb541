package controlplane

import "testing"

// sameSecret accepts the admin token only, whatever the lengths: a prefix,
// an extension or an empty token is refused.
func TestSameSecret(t *testing.T) {
	const secret = "s3cret-admin-token"
	for _, tc := range []struct {
		presented string
		want      bool
	}{
		{secret, true},
		{secret[:len(secret)-1], false},
		{secret + "x", false},
		{"", false},
		{"S3cret-admin-token", false},
	} {
		if got := sameSecret(tc.presented, secret); got != tc.want {
			t.Errorf("sameSecret(%q) = %v, want %v", tc.presented, got, tc.want)
		}
	}
}

// Package httpx holds the two HTTP helpers Felix's JSON APIs share (the
// control plane and the OIDC token exchange): reading a bearer token and
// writing a JSON response.
package httpx

import (
	"encoding/json"
	"net/http"
	"strings"
)

// BearerToken returns the token of the request's "Authorization: Bearer
// <token>" header (scheme case-insensitive, surrounding spaces ignored),
// and whether there was a non-empty one.
func BearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// WriteJSON writes v as a JSON body with the given status code.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

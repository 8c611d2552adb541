package controlplane

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// maxSourceBody bounds an answer a Client (and so HTTPSource) reads: twice a store's
// default MaxObjectBytes, so a snapshot of a store with the default bound
// always fits.
var maxSourceBody int64 = 2 * DefaultMaxObjectBytes

// HTTPSource reads a control plane's snapshot and change feed over HTTP
// with an admin bearer token (a Client's reads). It is safe for concurrent
// use.
type HTTPSource struct {
	c *Client
}

// NewHTTPSource returns a Source for the control plane at baseURL (e.g.
// "http://127.0.0.1:8443", without /v1). client nil means an http.Client
// with a 10 s timeout.
func NewHTTPSource(baseURL, token string, client *http.Client) *HTTPSource {
	return &HTTPSource{c: NewClient(baseURL, token, client)}
}

// Snapshot calls GET /v1/snapshot.
func (h *HTTPSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	var snap Snapshot
	if err := h.c.do(ctx, http.MethodGet, "/v1/snapshot", nil, &snap); err != nil {
		return nil, err
	}
	return &snap, nil
}

// Changes calls GET /v1/changes. A 410 answer is returned as an *APIError
// wrapping ErrResyncRequired.
func (h *HTTPSource) Changes(ctx context.Context, since uint64, limit int) (*ChangesPage, error) {
	q := url.Values{"since": {strconv.FormatUint(since, 10)}, "limit": {strconv.Itoa(limit)}}
	var page ChangesPage
	if err := h.c.do(ctx, http.MethodGet, "/v1/changes?"+q.Encode(), nil, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

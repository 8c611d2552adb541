package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxSourceBody bounds an answer HTTPSource reads: twice a store's
// default MaxObjectBytes, so a snapshot of a store with the default bound
// always fits.
var maxSourceBody int64 = 2 * DefaultMaxObjectBytes

// HTTPSource reads a control plane's snapshot and change feed over HTTP
// with an admin bearer token. It is safe for concurrent use.
type HTTPSource struct {
	base   string
	token  string
	client *http.Client
}

// NewHTTPSource returns a Source for the control plane at baseURL (e.g.
// "http://127.0.0.1:8443", without /v1). client nil means an http.Client
// with a 10 s timeout.
func NewHTTPSource(baseURL, token string, client *http.Client) *HTTPSource {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &HTTPSource{base: strings.TrimRight(baseURL, "/"), token: token, client: client}
}

// Snapshot calls GET /v1/snapshot.
func (h *HTTPSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	var snap Snapshot
	if err := h.get(ctx, "/v1/snapshot", &snap); err != nil {
		return nil, err
	}
	return &snap, nil
}

// Changes calls GET /v1/changes. A 410 answer is returned as an *APIError
// wrapping ErrResyncRequired.
func (h *HTTPSource) Changes(ctx context.Context, since uint64, limit int) (*ChangesPage, error) {
	q := url.Values{"since": {strconv.FormatUint(since, 10)}, "limit": {strconv.Itoa(limit)}}
	var page ChangesPage
	if err := h.get(ctx, "/v1/changes?"+q.Encode(), &page); err != nil {
		return nil, err
	}
	return &page, nil
}

func (h *HTTPSource) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path, nil)
	if err != nil {
		return err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("control plane GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSourceBody+1))
	if err != nil {
		return fmt.Errorf("control plane GET %s: %w", path, err)
	}
	if int64(len(body)) > maxSourceBody {
		return fmt.Errorf("control plane GET %s: answer larger than %d bytes", path, maxSourceBody)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(body, &eb) != nil || eb.Code == "" {
			eb.Code, eb.Message = codeInternal, strings.TrimSpace(string(body))
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("control plane GET %s: decode: %w", path, err)
	}
	return nil
}

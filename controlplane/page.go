package controlplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// MaxListLimit is the largest page a list endpoint answers (its ?limit=).
const MaxListLimit = 1000

// ListOptions select a page of a list (tenants, namespaces, streams or
// caches). The zero value selects the whole list, as the reference's
// lists answer.
type ListOptions struct {
	// Limit is the most items in the page, 1..MaxListLimit over HTTP.
	// Default 0: no limit, the whole list (from After on) in one answer.
	Limit int
	// After returns only items whose name sorts strictly after it in byte
	// order (the list's order): a page's Next, to read the page that
	// follows. It need not name an existing object. Default "": from the
	// start.
	After string
}

// query is o as URL query parameters ("" when o is the zero value).
func (o ListOptions) query() string {
	q := url.Values{}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Page is one page of a list, and the JSON answer of the list endpoints:
// {"items":[...]} and, when more items may follow, "next". Without paging
// (ListOptions{}) it is exactly the reference's {"items":[...]}.
type Page[T any] struct {
	// Items are in byte order of their name (tenant_id, namespace, stream
	// or cache); never nil.
	Items []T `json:"items"`
	// Next is the name of the last item when more items followed it at
	// the time of the read: pass it as ListOptions.After (?after=) for the
	// next page. "" (absent on the wire) on the last page.
	Next string `json:"next,omitempty"`
}

// listOptions reads ?limit= and ?after= of a list request. An absent or
// empty limit, or 0, means no limit (the reference's answer); anything
// but an integer in 0..MaxListLimit is a validation error naming it, as
// is either parameter given twice or a query that does not parse (a
// cursor half read would restart the list).
func listOptions(r *http.Request) (ListOptions, error) {
	var o ListOptions
	q, err := readQuery(r, "limit", "after")
	if err != nil {
		return o, err
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxListLimit {
			return o, &ValidationError{Field: "limit", Message: fmt.Sprintf("%q is not an integer from 0 to %d (0 or absent: the whole list)", v, MaxListLimit)}
		}
		o.Limit = n
	}
	o.After = q.Get("after")
	return o, nil
}

// readQuery parses a request's query strictly, for the parameters that
// are cursors or bounds (a list's limit and after, the change feed's
// since and limit): a query that does not parse, or one of names given
// more than once, is a validation error naming it. url.Values of
// r.URL.Query() would drop the pair that does not parse, so a cursor
// half read would restart the list or replay the feed from its start.
func readQuery(r *http.Request, names ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &ValidationError{Field: "query", Message: err.Error()}
	}
	for _, name := range names {
		if len(q[name]) > 1 {
			return nil, &ValidationError{Field: name, Message: "given more than once"}
		}
	}
	return q, nil
}

// listPage decodes objects whose key starts with prefix, in key order:
// those whose name (the key past prefix) sorts after o.After, at most
// o.Limit of them (all when Limit <= 0). The cursor seeks to the first
// name after o.After and reads at most Limit+1 keys; the extra one, not
// decoded, tells whether Next is set.
func listPage[T any](tx *bolt.Tx, bucket []byte, prefix string, o ListOptions) (Page[T], error) {
	p := Page[T]{Items: []T{}}
	c := tx.Bucket(bucket).Cursor()
	pre := []byte(prefix)
	start := []byte(prefix + o.After)
	k, v := c.Seek(start)
	if o.After != "" && bytes.Equal(k, start) {
		k, v = c.Next()
	}
	var last []byte // the key of the last item (valid for the transaction)
	for ; k != nil && bytes.HasPrefix(k, pre); k, v = c.Next() {
		if o.Limit > 0 && len(p.Items) == o.Limit {
			p.Next = string(last[len(pre):])
			break
		}
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return Page[T]{}, fmt.Errorf("decode %s %q: %w", bucket, k, err)
		}
		p.Items = append(p.Items, x)
		last = k
	}
	return p, nil
}

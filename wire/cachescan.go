package wire

import (
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

// CacheScan asks for a page of a cache's keys (extension, CapCacheExt;
// Redis SCAN with MATCH prefix*): up to Limit live keys that start with
// Prefix and sort after Cursor, in byte order. An empty Cursor starts the
// scan; the cursor of each page continues it. Limit nil means
// DefaultScanLimit; the broker caps it at MaxScanLimit, and 0 is refused
// (cache_error code "invalid"). Empty Prefix and Cursor are omitted.
type CacheScan struct {
	TenantID, Namespace, Cache string
	RequestID                  uint64
	Prefix, Cursor             string
	Limit                      *uint64
}

// CacheScanPage answers CacheScan: Keys in byte order, and the Cursor to
// send for the next page, empty when the scan is done. Cursor is the last
// key of the page; a page may hold fewer keys than asked (the frame
// limit), even none only at the end.
type CacheScanPage struct {
	RequestID uint64
	Keys      []string
	Cursor    string
}

// Scan page sizes.
const (
	// DefaultScanLimit is a cache_scan's limit when it gives none.
	DefaultScanLimit = 100
	// MaxScanLimit caps a cache_scan's limit.
	MaxScanLimit = 1000
)

func (*CacheScan) Type() MsgType     { return TypeCacheScan }
func (*CacheScanPage) Type() MsgType { return TypeCacheScanPage }

// optStr writes name only when v is not empty.
func (e *encoder) optStr(name, v string) {
	if v != "" {
		e.str(name, v)
	}
}

// strList writes a JSON array of strings (keys).
func (e *encoder) strList(name string, vs []string) {
	e.key(name)
	e.buf = append(e.buf, '[')
	for i, v := range vs {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		b, err := jsontext.AppendQuote(e.buf, v)
		if err != nil && e.err == nil {
			e.err = fmt.Errorf("field %s: %w", name, ErrInvalidUTF8)
		}
		e.buf = b
	}
	e.buf = append(e.buf, ']')
}

func (m *CacheScan) appendFields(e *encoder) {
	e.str("tenant_id", m.TenantID)
	e.str("namespace", m.Namespace)
	e.str("cache", m.Cache)
	e.u64("request_id", m.RequestID)
	e.optStr("prefix", m.Prefix)
	e.optStr("cursor", m.Cursor)
	e.optU64("limit", m.Limit)
}

func (m *CacheScanPage) appendFields(e *encoder) {
	e.u64("request_id", m.RequestID)
	e.strList("keys", m.Keys)
	e.str("cursor", m.Cursor)
}

// QuotedLen is the length of s as a JSON string, quotes included, as this
// package writes it: '"' and '\\' and the control characters are
// escaped (\b \f \n \r \t short, the others \u00xx), everything else is
// written as is. s must be valid UTF-8 (cache keys are). A server sizing
// a cache_scan_page adds one comma per key.
func QuotedLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}

func init() {
	specs[TypeCacheScan] = msgSpec{allowed: bit(fTenantID, fNamespace, fCache, fRequestID, fPrefix, fScanCursor, fLimit),
		required: bit(fTenantID, fNamespace, fCache, fRequestID),
		build: func(f *fields) Message {
			return &CacheScan{TenantID: f.str[fTenantID], Namespace: f.str[fNamespace], Cache: f.str[fCache],
				RequestID: f.num[fRequestID], Prefix: f.str[fPrefix], Cursor: f.str[fScanCursor], Limit: f.optU64(fLimit)}
		}}
	specs[TypeCacheScanPage] = msgSpec{allowed: bit(fRequestID, fKeys, fScanCursor), required: bit(fRequestID, fKeys, fScanCursor),
		build: func(f *fields) Message {
			return &CacheScanPage{RequestID: f.num[fRequestID], Keys: f.keys, Cursor: f.str[fScanCursor]}
		}}
}

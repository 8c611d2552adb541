package controlplane

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/felixmq/felix/broker"
)

// Tenant is the top of the hierarchy. JSON: {"tenant_id","display_name"}.
type Tenant struct {
	TenantID    string `json:"tenant_id"`
	DisplayName string `json:"display_name"`
}

// Namespace groups streams and caches of a tenant.
type Namespace struct {
	TenantID    string `json:"tenant_id"`
	Namespace   string `json:"namespace"`
	DisplayName string `json:"display_name"`
}

// Key returns the namespace's key.
func (n Namespace) Key() NamespaceKey { return NamespaceKey{n.TenantID, n.Namespace} }

// Retention bounds a durable stream's log. A nil field means no limit.
type Retention struct {
	MaxAgeSeconds *int64 `json:"max_age_seconds,omitempty"`
	MaxSizeBytes  *int64 `json:"max_size_bytes,omitempty"`
}

// Enum values of Stream, serialized PascalCase as in the reference.
const (
	KindStream = "Stream"
	KindQueue  = "Queue"
	KindCache  = "Cache"

	ConsistencyLeader = "Leader"
	ConsistencyQuorum = "Quorum"

	DeliveryAtMostOnce  = "AtMostOnce"
	DeliveryAtLeastOnce = "AtLeastOnce"

	FsyncAlways   = "always"
	FsyncInterval = "interval"
	FsyncNever    = "never"
)

// MaxShards bounds Stream.Shards.
const MaxShards = 1024

// MaxDisplayNameBytes bounds display names.
const MaxDisplayNameBytes = 1024

// Stream is a stream's declared configuration. On create, empty fields get
// defaults: Kind "Stream", Shards 1, Consistency "Leader", Delivery
// "AtMostOnce", Fsync "interval". Fsync (our addition to the reference
// model) is the durable log's sync policy; it has no effect when Durable is
// false. Shards, Kind, Consistency and Delivery are stored and served; the
// single-node broker does not act on them yet.
type Stream struct {
	TenantID    string    `json:"tenant_id"`
	Namespace   string    `json:"namespace"`
	Stream      string    `json:"stream"`
	Kind        string    `json:"kind"`
	Shards      int       `json:"shards"`
	Retention   Retention `json:"retention"`
	Consistency string    `json:"consistency"`
	Delivery    string    `json:"delivery"`
	Durable     bool      `json:"durable"`
	Fsync       string    `json:"fsync"`
}

// Key returns the stream's key.
func (s Stream) Key() StreamKey { return StreamKey{s.TenantID, s.Namespace, s.Stream} }

// StreamPatch changes a stream; nil fields are left alone. Retention, when
// present, replaces the whole retention object.
type StreamPatch struct {
	Retention   *Retention `json:"retention,omitempty"`
	Consistency *string    `json:"consistency,omitempty"`
	Delivery    *string    `json:"delivery,omitempty"`
	Durable     *bool      `json:"durable,omitempty"`
	Fsync       *string    `json:"fsync,omitempty"`
}

// Cache is a cache's declared configuration. CapacityBytes bounds its
// accounted size; 0 means unbounded. Durable (default false) keeps its
// entries in a log under the broker's data directory, as
// `felix serve --durable-cache` does, synced by the broker's fsync policy.
type Cache struct {
	TenantID      string `json:"tenant_id"`
	Namespace     string `json:"namespace"`
	Cache         string `json:"cache"`
	DisplayName   string `json:"display_name"`
	CapacityBytes int64  `json:"capacity_bytes"`
	Durable       bool   `json:"durable"`
}

// Key returns the cache's key.
func (c Cache) Key() CacheKey { return CacheKey{c.TenantID, c.Namespace, c.Cache} }

// CachePatch changes a cache; nil fields are left alone.
type CachePatch struct {
	DisplayName   *string `json:"display_name,omitempty"`
	CapacityBytes *int64  `json:"capacity_bytes,omitempty"`
	Durable       *bool   `json:"durable,omitempty"`
}

// NamespaceKey names a namespace.
type NamespaceKey struct {
	TenantID  string `json:"tenant_id"`
	Namespace string `json:"namespace"`
}

func (k NamespaceKey) String() string { return k.TenantID + "/" + k.Namespace }

// StreamKey names a stream.
type StreamKey struct {
	TenantID  string `json:"tenant_id"`
	Namespace string `json:"namespace"`
	Stream    string `json:"stream"`
}

// validateNames checks every name of the key.
func (k Key) validateNames() error {
	fields := []struct{ field, v string }{{"tenant_id", k.TenantID}, {"namespace", k.Namespace}, {"stream", k.Stream}, {"cache", k.Cache}}
	for i, f := range fields {
		if f.v == "" && i > 0 {
			continue
		}
		if err := validateName(f.field, f.v); err != nil {
			return err
		}
	}
	return nil
}

func (k StreamKey) String() string { return k.TenantID + "/" + k.Namespace + "/" + k.Stream }

// CacheKey names a cache.
type CacheKey struct {
	TenantID  string `json:"tenant_id"`
	Namespace string `json:"namespace"`
	Cache     string `json:"cache"`
}

func (k CacheKey) String() string { return k.TenantID + "/" + k.Namespace + "/" + k.Cache }

// nameRule is the rule told with a refused name.
const nameRule = "at most 255 bytes of UTF-8 without '/', ':', '*', whitespace or control characters"

// validateName applies the broker's name rules (broker.ValidateName:
// non-empty UTF-8, at most 255 bytes, no '/', ':', '*', whitespace or
// control characters) and names the field. The error tells the rule and,
// when one is at hand, a valid name to use instead.
func validateName(field, s string) error {
	err := broker.ValidateName(field, s)
	if err == nil {
		return nil
	}
	msg := err.Error() + ": use a name of " + nameRule
	if alt := suggestName(s); alt != "" {
		msg += fmt.Sprintf(", such as %q", alt)
	}
	return &ValidationError{Field: field, Message: msg, reason: err.Error()}
}

// suggestName replaces the characters a name may not hold with '-', or
// returns "" when that does not make it valid.
func suggestName(s string) string {
	alt := strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r == '*' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return '-'
		}
		return r
	}, s)
	if alt == s || broker.ValidateName("name", alt) != nil {
		return ""
	}
	return alt
}

// legacyNameError refuses to change, or to create children under, an
// existing object whose name (or a parent's) an older version accepted
// and the broker now refuses. err is the name's *ValidationError.
func legacyNameError(kind, key string, err error) error {
	ve, ok := err.(*ValidationError)
	if !ok || ve.reason == "" {
		return err
	}
	return &ValidationError{Field: ve.Field, reason: ve.reason, Message: fmt.Sprintf(
		"%s; %s %s was made by an older version with looser name rules: it can be listed, read and deleted, not changed or given new children. "+
			"Create a replacement with a valid name (%s), move clients to it, then delete %s", ve.reason, kind, key, nameRule, key)}
}

func validateDisplayName(s string) error {
	if len(s) > MaxDisplayNameBytes || !utf8.ValidString(s) {
		return &ValidationError{Field: "display_name", Message: fmt.Sprintf("must be UTF-8 of at most %d bytes", MaxDisplayNameBytes)}
	}
	return nil
}

func oneOf(field, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return &ValidationError{Field: field, Message: fmt.Sprintf("%q is not one of %q", v, allowed)}
}

func (t Tenant) validate() error {
	if err := validateName("tenant_id", t.TenantID); err != nil {
		return err
	}
	return validateDisplayName(t.DisplayName)
}

func (n Namespace) validate() error {
	if err := validateName("tenant_id", n.TenantID); err != nil {
		return err
	}
	if err := validateName("namespace", n.Namespace); err != nil {
		return err
	}
	return validateDisplayName(n.DisplayName)
}

// withDefaults fills in the create defaults of a stream.
func (s Stream) withDefaults() Stream {
	if s.Kind == "" {
		s.Kind = KindStream
	}
	if s.Shards == 0 {
		s.Shards = 1
	}
	if s.Consistency == "" {
		s.Consistency = ConsistencyLeader
	}
	if s.Delivery == "" {
		s.Delivery = DeliveryAtMostOnce
	}
	if s.Fsync == "" {
		s.Fsync = FsyncInterval
	}
	return s
}

func (s Stream) validate() error {
	for _, f := range []struct{ field, v string }{{"tenant_id", s.TenantID}, {"namespace", s.Namespace}, {"stream", s.Stream}} {
		if err := validateName(f.field, f.v); err != nil {
			return err
		}
	}
	if err := oneOf("kind", s.Kind, KindStream, KindQueue, KindCache); err != nil {
		return err
	}
	if s.Shards < 1 || s.Shards > MaxShards {
		return &ValidationError{Field: "shards", Message: fmt.Sprintf("must be between 1 and %d, got %d", MaxShards, s.Shards)}
	}
	if err := s.Retention.validate(); err != nil {
		return err
	}
	if err := oneOf("consistency", s.Consistency, ConsistencyLeader, ConsistencyQuorum); err != nil {
		return err
	}
	if err := oneOf("delivery", s.Delivery, DeliveryAtMostOnce, DeliveryAtLeastOnce); err != nil {
		return err
	}
	return oneOf("fsync", s.Fsync, FsyncAlways, FsyncInterval, FsyncNever)
}

// MaxRetentionAgeSeconds bounds Retention.MaxAgeSeconds: the longest age
// a time.Duration holds (some 292 years). A larger one would wrap around
// when the broker turns it into a duration, into a tiny age that deletes
// the stream's records.
const MaxRetentionAgeSeconds = int64(math.MaxInt64 / int64(time.Second))

func (r Retention) validate() error {
	if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds < 0 {
		return &ValidationError{Field: "retention.max_age_seconds", Message: "must not be negative"}
	}
	if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds > MaxRetentionAgeSeconds {
		return &ValidationError{Field: "retention.max_age_seconds", Message: fmt.Sprintf("must be at most %d (about 292 years; omit it for no age limit)", MaxRetentionAgeSeconds)}
	}
	if r.MaxSizeBytes != nil && *r.MaxSizeBytes < 0 {
		return &ValidationError{Field: "retention.max_size_bytes", Message: "must not be negative"}
	}
	return nil
}

// apply returns s changed by p (not validated).
func (p StreamPatch) apply(s Stream) Stream {
	if p.Retention != nil {
		s.Retention = *p.Retention
	}
	if p.Consistency != nil {
		s.Consistency = *p.Consistency
	}
	if p.Delivery != nil {
		s.Delivery = *p.Delivery
	}
	if p.Durable != nil {
		s.Durable = *p.Durable
	}
	if p.Fsync != nil {
		s.Fsync = *p.Fsync
	}
	return s
}

func (c Cache) validate() error {
	for _, f := range []struct{ field, v string }{{"tenant_id", c.TenantID}, {"namespace", c.Namespace}, {"cache", c.Cache}} {
		if err := validateName(f.field, f.v); err != nil {
			return err
		}
	}
	if c.CapacityBytes < 0 {
		return &ValidationError{Field: "capacity_bytes", Message: "must not be negative"}
	}
	return validateDisplayName(c.DisplayName)
}

// apply returns c changed by p (not validated).
func (p CachePatch) apply(c Cache) Cache {
	if p.DisplayName != nil {
		c.DisplayName = *p.DisplayName
	}
	if p.CapacityBytes != nil {
		c.CapacityBytes = *p.CapacityBytes
	}
	if p.Durable != nil {
		c.Durable = *p.Durable
	}
	return c
}

package auth

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Actions of permission strings. The first eleven are the reference's;
// ActionQueueConsume and ActionAdmin are Felix-in-Go additions.
const (
	ActionRBACView             = "rbac.view"
	ActionRBACPolicyManage     = "rbac.policy.manage"
	ActionRBACAssignmentManage = "rbac.assignment.manage"
	ActionTenantManage         = "tenant.manage"
	ActionNamespaceManage      = "ns.manage"
	ActionStreamManage         = "stream.manage"
	ActionCacheManage          = "cache.manage"
	ActionStreamPublish        = "stream.publish"
	ActionStreamSubscribe      = "stream.subscribe"
	ActionCacheRead            = "cache.read"
	ActionCacheWrite           = "cache.write"
	// ActionQueueConsume lets a member join a consumer group of a stream
	// (resource StreamResource).
	ActionQueueConsume = "queue.consume"
	// ActionAdmin is the control-plane administrator's action, on
	// ClusterResource (everything) or TenantResource (one tenant).
	ActionAdmin = "admin"
)

// Actions lists every known action.
var Actions = []string{
	ActionRBACView, ActionRBACPolicyManage, ActionRBACAssignmentManage,
	ActionTenantManage, ActionNamespaceManage, ActionStreamManage, ActionCacheManage,
	ActionStreamPublish, ActionStreamSubscribe, ActionCacheRead, ActionCacheWrite,
	ActionQueueConsume, ActionAdmin,
}

// ClusterResource is the resource of cluster-wide administration.
const ClusterResource = "cluster"

// Resource kinds: the part of a resource before its first ':'.
const (
	KindTenant    = "tenant"
	KindNamespace = "namespace"
	KindStream    = "stream"
	KindCache     = "cache"
)

// TenantResource is "tenant:{t}".
func TenantResource(tenant string) string { return KindTenant + ":" + tenant }

// NamespaceResource is "namespace:{t}/{ns}".
func NamespaceResource(tenant, ns string) string { return KindNamespace + ":" + tenant + "/" + ns }

// StreamResource is "stream:{t}/{ns}/{s}"; streams and their consumer
// groups (queue.consume) share it.
func StreamResource(tenant, ns, stream string) string {
	return KindStream + ":" + tenant + "/" + ns + "/" + stream
}

// CacheResource is "cache:{t}/{ns}/{c}".
func CacheResource(tenant, ns, cache string) string {
	return KindCache + ":" + tenant + "/" + ns + "/" + cache
}

// kindSegments is the number of '/'-separated segments of each kind's path.
var kindSegments = map[string]int{KindTenant: 1, KindNamespace: 2, KindStream: 3, KindCache: 3}

// Implied actions (inheritance).
var (
	// tenantImplied are granted on {t}-scoped resources by tenant.manage on
	// tenant:{t}; namespaceImplied by ns.manage on namespace:{t}/{ns}.
	streamImplied = []string{ActionStreamManage, ActionStreamPublish, ActionStreamSubscribe, ActionQueueConsume}
	cacheImplied  = []string{ActionCacheManage, ActionCacheRead, ActionCacheWrite}
)

// MaxNameLen bounds a tenant, namespace, stream or cache name, in bytes.
const MaxNameLen = 255

// ValidName reports whether s may be a tenant, namespace, stream or cache
// name, by the broker's rules (broker.ValidateName, which says why not):
// non-empty UTF-8 of at most MaxNameLen bytes without '/' (the path
// separator), ':' (the permission separator), '*' (the permission
// wildcard), whitespace or control characters. A valid name written into
// a permission path is exactly one literal segment.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen || !utf8.ValidString(s) || strings.ContainsAny(s, "/:*") {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

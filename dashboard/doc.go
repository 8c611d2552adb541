// Package dashboard holds the Felix web dashboard: one HTML page with its
// CSS and JavaScript, embedded in the binary (no CDN, no build step). The
// page polls GET /api/overview (served by package metrics) every second
// and updates its tables in place: broker overview, streams with publish
// and delivery rates, subscribers with queue depth and drops, consumer
// groups with lag, caches with hit rate, request/reply services with
// their responders, requests in flight and results.
//
// Every stream row is a <tr> with data-stream="tenant/namespace/stream"
// (and id "stream:tenant/namespace/stream"), every service row one with
// data-service="tenant/namespace/service"; numeric cells carry their raw
// value in data-value and a class naming the column (td.requests,
// td.no-responders…), so tests and scripts can read them.
//
// Every answer forbids framing (ContentSecurityPolicy's frame-ancestors
// 'none', X-Frame-Options DENY) and sniffing (SetSecurityHeaders).
package dashboard

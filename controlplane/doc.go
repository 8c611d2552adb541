// Package controlplane is Felix's metadata control plane: tenants,
// namespaces, streams and caches, kept in a bbolt file in the data
// directory (Store), served over an HTTP JSON API under /v1 (Server), and
// followed by brokers through a change feed (Follower, BrokerApplier).
//
// Change feed. Every mutation commits its objects and its change records
// (op created|updated|deleted, kind, key, object) in one bbolt transaction.
// Seqs are global across kinds, start at 1 and never repeat. Cascading
// deletes (tenant → namespaces → streams and caches) record a delete for
// every child, children first. The log keeps the newest
// StoreOptions.ChangeRetention changes; a reader asking for an older
// position (or one past the head) gets ErrResyncRequired (HTTP 410,
// code resync_required) and must take a new snapshot. A page's next_seq is
// one past its last item, so a reader paging with it never skips a change
// (the reference returned the global head and skipped).
//
// Following. A Follower reads a Source — the *Store itself when the broker
// embeds the control plane, or an HTTPSource for a remote one — takes a
// snapshot, then pages the feed every SyncInterval, applying each change
// through an Applier. BrokerApplier applies to a *broker.Broker and a
// *cache.Store. A change that fails to apply is retried at the next sync
// without holding back later ones, and is visible in Follower.Stats. An
// object whose name the broker refuses (made under an older version's
// looser name rules) is skipped, logged and counted in Stats.Skipped; the
// API still lists, reads and deletes it but refuses to change it.
//
// Bounds. StoreOptions.MaxObjectBytes caps the JSON bytes of all objects
// (what a snapshot and a list read without paging carry) at half of what
// an HTTPSource reads, so a remote follower can always read the snapshot.
//
// Lists. The tenants, namespaces, streams and caches lists are in byte
// order of the name. Without parameters they answer the reference's
// {"items":[...]}, everything; ?limit=N (at most MaxListLimit) pages them
// and ?after=NAME resumes after a name: a page's "next" (ListOptions,
// Page, Client.AllStreams and the like).
//
// Security. Every route except /v1/system/health and /v1/openapi.json
// needs an admin bearer credential (Options.AdminToken or Authorize); the
// reference served its metadata CRUD unauthenticated. Deleting a tenant,
// like creating one, is authorized as a cluster-wide route.
package controlplane

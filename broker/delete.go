package broker

import "fmt"

// DeleteNamespace removes a namespace and every stream in it (as
// DeleteStream does for each) and returns the removed streams' keys. An
// unknown namespace is an error wrapping ErrNamespaceNotFound.
func (b *Broker) DeleteNamespace(tenant, ns string) ([]StreamKey, error) {
	b.mu.Lock()
	n, ok := b.tenants[tenant][ns]
	if ok {
		delete(b.tenants[tenant], ns)
		b.nstreams -= len(n)
	}
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("delete namespace %s/%s: %w", tenant, ns, ErrNamespaceNotFound)
	}
	return shutdownAll(n), nil
}

// DeleteTenant removes a tenant with all its namespaces and streams and
// returns the removed streams' keys. An unknown tenant is an error
// wrapping ErrTenantNotFound.
func (b *Broker) DeleteTenant(tenant string) ([]StreamKey, error) {
	b.mu.Lock()
	t, ok := b.tenants[tenant]
	if ok {
		delete(b.tenants, tenant)
		for _, n := range t {
			b.nstreams -= len(n)
		}
	}
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("delete tenant %s: %w", tenant, ErrTenantNotFound)
	}
	var keys []StreamKey
	for _, n := range t {
		keys = append(keys, shutdownAll(n)...)
	}
	return keys, nil
}

// shutdownAll ends the streams of a namespace already removed from the
// registry.
func shutdownAll(n map[string]*Stream) []StreamKey {
	keys := make([]StreamKey, 0, len(n))
	for _, s := range n {
		s.shutdown(ErrStreamDeleted)
		keys = append(keys, s.key)
	}
	return keys
}

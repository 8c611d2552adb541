package transport

import "crypto/tls"

// EchoALPN makes a server configuration accept clients with and without
// ALPN (see the package doc). conf must list no NextProtos; the returned
// configuration (a clone) selects the first protocol a client offers, and
// none when it offers none. A configuration that already has NextProtos or
// a GetConfigForClient hook is returned unchanged.
func EchoALPN(conf *tls.Config) *tls.Config {
	if len(conf.NextProtos) > 0 || conf.GetConfigForClient != nil {
		return conf
	}
	base := conf.Clone()
	out := conf.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if len(hello.SupportedProtos) == 0 {
			return nil, nil // use out as is: no ALPN selected
		}
		c := base.Clone()
		c.NextProtos = []string{hello.SupportedProtos[0]}
		return c, nil
	}
	return out
}

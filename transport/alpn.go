package transport

import "crypto/tls"

// EchoALPN makes a server configuration accept clients with and without
// ALPN (see the package doc). conf must list no NextProtos; the returned
// configuration (a clone) selects the first protocol a client offers, and
// none when it offers none. A configuration that already has NextProtos or
// a GetConfigForClient hook is returned unchanged.
func EchoALPN(conf *tls.Config) *tls.Config { return echoALPN(conf, nil) }

// echoALPN is EchoALPN that also lets adjust change each handshake's
// configuration (e.g. to the client CAs of the moment). The per-handshake
// configuration is a clone of the returned one as it is then, so settings
// made on it after this call (VerifyConnection, ...) apply too.
func echoALPN(conf *tls.Config, adjust func(*tls.Config)) *tls.Config {
	if len(conf.NextProtos) > 0 || conf.GetConfigForClient != nil {
		return conf
	}
	out := conf.Clone()
	out.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if len(hello.SupportedProtos) == 0 && adjust == nil {
			return nil, nil // use out as is: no ALPN selected
		}
		c := out.Clone()
		c.GetConfigForClient = nil
		if len(hello.SupportedProtos) > 0 {
			c.NextProtos = []string{hello.SupportedProtos[0]}
		}
		if adjust != nil {
			adjust(c)
		}
		return c, nil
	}
	return out
}

package transport

import "crypto/tls"

// ClientCertIdentity names the client of a connection by its verified
// certificate: the subject common name, or else the first subject
// alternative name (DNS name, e-mail address, IP address, then URI). It
// returns "" when the client showed no certificate. Only meaningful when the
// server verifies client certificates (TLSOptions.ClientCAFile).
func ClientCertIdentity(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return ""
	}
	leaf := cs.PeerCertificates[0]
	switch {
	case leaf.Subject.CommonName != "":
		return leaf.Subject.CommonName
	case len(leaf.DNSNames) > 0:
		return leaf.DNSNames[0]
	case len(leaf.EmailAddresses) > 0:
		return leaf.EmailAddresses[0]
	case len(leaf.IPAddresses) > 0:
		return leaf.IPAddresses[0].String()
	case len(leaf.URIs) > 0:
		return leaf.URIs[0].String()
	}
	return ""
}

// Package auth holds Felix's security building blocks: Felix tokens (EdDSA
// JWTs), key sets (JWKS) and their reloading, the permission matcher (RBAC)
// and the denial auditor. It has no I/O beyond reading key files and
// fetching a JWKS over HTTP; the server package wires it to the auth frame.
//
// # Tokens
//
// A Felix token is a JWT signed with Ed25519, header {"alg":"EdDSA","kid":…}
// and claims iss ("felix-auth"), aud ("felix-broker"), sub (the principal),
// tid (the tenant), perms (permission strings), iat and exp (TTL 900 s by
// default), exactly as the reference Felix issues them. A Signer issues
// tokens; a Verifier checks them: the algorithm is pinned to EdDSA, the key
// named by kid is tried first and then the others, issuer and audience must
// match, exp and nbf/iat are checked with a leeway (60 s by default) against
// an injectable clock, and tid must equal the tenant of the auth frame.
// Claim names are matched exactly ("TID" is an unknown claim, not tid) and a
// name given twice in the header or claims makes the token malformed
// (CheckUniqueNames, DecodeFields), so no two verifiers read one token two
// ways.
// Every failure is a *TokenError whose Reason is one of the Err* sentinels
// (errors.Is works); error texts never contain the token.
//
// A key id (kid) is derived from the public key: the hex of the first 16
// bytes of its SHA-256, so a private key saved as PEM keeps its kid.
//
// # Key sets
//
// A KeySet is an immutable set of Ed25519 public keys by kid, read from and
// written as the reference's JWKS JSON. Keys are broker-wide by default; a key
// may carry a tenant (KeySet.ForTenant), and then it verifies only tokens
// presented for that tenant, which lets one broker hold the per-tenant keys of
// a control plane. A set holds at most MaxKeySetKeys (64) keys, since a
// token with an unknown kid is tried against each; a JWKS's member names
// are matched exactly. A KeySource keeps the current KeySet of a JWKS file
// (read at every interval and reloaded when its content's SHA-256 changes)
// or URL (refetched every interval); a failed reload keeps the previous
// keys and is logged.
//
// # Permissions
//
// A permission is "action:resource", split on the first ':'. In both halves
// '*' matches any run of characters, '/' included; the pattern "*" alone
// matches everything. tenant.manage on tenant:{t} implies ns.manage,
// stream.*, cache.* and queue.consume inside the tenant; ns.manage on
// namespace:{t}/{ns} implies stream.*, cache.* and queue.consume inside the
// namespace (see Matcher and docs/security.md).
package auth

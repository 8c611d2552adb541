// Package oidc verifies upstream OpenID Connect ID tokens and exchanges them
// for Felix tokens (POST /v1/tenants/{tenant}/token/exchange), as the
// reference control plane does.
//
// A Verifier checks a JWT from a tenant's registered identity providers
// (IssuerConfig): the unverified iss selects the provider, the header's alg
// must be allowed (ES256 only by default; RS*, PS* and ES384/ES512 may be
// allowed) and its kid is required. The provider's JWKS comes from
// IssuerConfig.JWKSURL or from the jwks_uri of its discovery document
// ({issuer}/.well-known/openid-configuration unless DiscoveryURL is set); it
// is cached for an hour and fetched again once when a token names an unknown
// kid (at most every MinRefetchInterval). A discovery document's issuer,
// when present, must equal the configured issuer; discovery is cached per
// URL and configured issuer, so every issuer naming one discovery URL is
// checked. The key's type and curve must fit
// the alg. Then iss, aud (one of the configured audiences), exp (required),
// nbf and iat are checked with 60 s of skew. Claim names are exact and a
// token naming a claim or header member twice is invalid; JWKS and
// discovery documents are read by exact names, a name twice refusing the
// document. The principal id is hex(sha256(issuer + "|" + subject)); an
// issuer containing '|' is refused as a configuration error
// (IssuerConfig.Validate, which also refuses an empty issuer or audience),
// so ids are unambiguous.
// Tokens over 64 KiB are refused unparsed; the caches hold at most 1024
// JWKS and 1024 discovery documents (least recently used dropped) and 64
// keys per JWKS (Verifier.Stats counts what is dropped).
//
// ExchangeHandler maps a verified principal to permissions with a
// caller-supplied function, optionally narrows them to the request's
// "requested" actions and "resources" patterns (auth.Narrow), and signs a
// Felix token with an auth.Signer. Errors are JSON
// {"code","message","request_id":null} as the reference: 401 "missing
// bearer token" / "invalid token", 403 "tenant not allowed" (also for a
// {tenant} that is not a valid name, see auth.ValidName) / "no issuers
// configured" / "issuer not allowed" / "no permissions"; 400 for more than
// auth.MaxNarrowPatterns requested actions or resources. Failure lines
// (invalid token, issuer keys, server-side errors) are rate-limited per
// kind and counted (ExchangeHandler.Stats).
package oidc

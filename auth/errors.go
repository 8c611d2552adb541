package auth

import "errors"

// Reasons a token is refused; a *TokenError wraps exactly one of them.
var (
	ErrNoToken       = errors.New("no token")
	ErrMalformed     = errors.New("malformed token")
	ErrBadSignature  = errors.New("bad signature")
	ErrExpired       = errors.New("token expired")
	ErrNotYetValid   = errors.New("token not yet valid")
	ErrWrongIssuer   = errors.New("wrong issuer")
	ErrWrongAudience = errors.New("wrong audience")
	ErrWrongTenant   = errors.New("wrong tenant")
	ErrUnknownKey    = errors.New("unknown signing key")
	ErrTokenTooLarge = errors.New("token too large")
)

// TokenError is the error of Verifier.Verify. Its text is short and never
// contains the token or its claims, so it is safe to log and to send to the
// client.
type TokenError struct {
	// Reason is one of the Err* sentinels of this package.
	Reason error
	// Detail, when set, says more (e.g. a too large token's length and the
	// bound); it never contains the token.
	Detail string
}

func (e *TokenError) Error() string {
	if e.Detail != "" {
		return "auth: " + e.Reason.Error() + ": " + e.Detail
	}
	return "auth: " + e.Reason.Error()
}

// Unwrap makes errors.Is(err, ErrExpired) and the like work.
func (e *TokenError) Unwrap() error { return e.Reason }

func tokenErr(reason error) error { return &TokenError{Reason: reason} }

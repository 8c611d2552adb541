package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/internal/httpx"
)

// ErrTenantNotAllowed is returned (wrapped) by ExchangeHandler.Issuers for
// a tenant that may not exchange tokens (unknown, or not set up for it).
var ErrTenantNotAllowed = errors.New("tenant not allowed")

// maxExchangeBody bounds the request body of an exchange.
const maxExchangeBody = 64 << 10

// ExchangeAction is the Denial.Action audited for a refused exchange.
const ExchangeAction = "token.exchange"

// ExchangeHandler serves POST /v1/tenants/{tenant}/token/exchange: it
// verifies the upstream bearer token, maps the principal to permissions and
// replies {"felix_token","expires_in","token_type":"Bearer"}. Mount it with
// the pattern "POST /v1/tenants/{tenant}/token/exchange" (the tenant is
// then r.PathValue("tenant")) or at that path under any router. Issuers,
// Permissions and Signer are required. A tenant that is not a valid name
// (auth.ValidName: it holds '*', '/', ':', …) is refused as not allowed
// before Issuers is asked.
type ExchangeHandler struct {
	// Issuers returns the identity providers of a tenant. An error
	// wrapping ErrTenantNotAllowed is a 403; other errors are a 500.
	Issuers func(ctx context.Context, tenant string) ([]IssuerConfig, error)
	// Permissions returns the permission strings ("action:resource") of a
	// principal in a tenant. Invalid strings are dropped (and logged); the
	// rest are confined to the tenant (see auth.ConfineToTenant).
	Permissions func(ctx context.Context, tenant string, p *Principal) ([]string, error)
	// Signer signs the Felix tokens; its TTL is the token lifetime, cut
	// short to the upstream token's exp.
	Signer *auth.Signer
	// Verifier verifies upstream tokens and caches their keys. Default: a
	// zero Verifier owned by the handler.
	Verifier *Verifier
	// Auditor, when set, records every refused exchange.
	Auditor *auth.Auditor
	// Log receives failures. Default slog.Default().
	Log *slog.Logger
	// LogBurst and LogRate bound the lines of each kind of failure
	// ("invalid token", "issuer keys", and the server-side ones together):
	// anyone can send invalid tokens in a loop, and while an issuer's keys
	// cannot be fetched every exchange naming it fails. LogBurst lines at
	// once (zero or negative: auth.DefaultDenialLogBurst, 10), then LogRate
	// a second (zero or negative: auth.DefaultDenialLogRate, 1). Every
	// failure is counted (Stats); each line carries failures_total, the
	// count of its kind so far, and not_logged, the lines of its kind
	// left out since the previous one.
	LogBurst int
	LogRate  float64
	// Now paces the log lines. Default time.Now.
	Now func() time.Time

	once     sync.Once
	verifier *Verifier
	invalid  failureLog // tokens refused as invalid
	keys     failureLog // issuer keys unavailable
	internal failureLog // issuer lookup, permissions, signing, dropped permissions
}

// ExchangeStats counts an ExchangeHandler's failures.
type ExchangeStats struct {
	// InvalidTokens is the number of exchanges refused 401 "invalid token".
	InvalidTokens uint64
	// KeysUnavailable is the number answered 500 "issuer keys unavailable".
	KeysUnavailable uint64
	// Internal is the number of other server-side failures: an issuer or
	// permission lookup that failed, a token that could not be signed, and
	// each permission string dropped as invalid.
	Internal uint64
}

// Stats returns the failures counted so far.
func (h *ExchangeHandler) Stats() ExchangeStats {
	return ExchangeStats{
		InvalidTokens:   h.invalid.total.Load(),
		KeysUnavailable: h.keys.total.Load(),
		Internal:        h.internal.total.Load(),
	}
}

// failureLog counts failures of one kind and logs them, at most as its
// limiter allows.
type failureLog struct {
	total atomic.Uint64
	lines *auth.LogLimiter
}

func (f *failureLog) log(h *ExchangeHandler, log *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	n := f.total.Add(1)
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	ok, notLogged := f.lines.Allow(now())
	if !ok {
		return
	}
	attrs = append(attrs, slog.Uint64("failures_total", n), slog.Uint64("not_logged", notLogged))
	log.LogAttrs(context.Background(), level, msg, attrs...)
}

// exchangeRequest is the optional body.
type exchangeRequest struct {
	Requested []string `json:"requested"`
	Resources []string `json:"resources"`
}

// ExchangeResponse is the reply of a successful exchange.
type ExchangeResponse struct {
	FelixToken string `json:"felix_token"`
	ExpiresIn  int64  `json:"expires_in"`
	TokenType  string `json:"token_type"`
}

// ErrorResponse is the body of every error reply (as the reference).
type ErrorResponse struct {
	Code      string  `json:"code"`
	Message   string  `json:"message"`
	RequestID *string `json:"request_id"`
}

func (h *ExchangeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(func() {
		h.verifier = h.Verifier
		if h.verifier == nil {
			h.verifier = &Verifier{}
		}
		h.invalid.lines = auth.NewLogLimiter(h.LogBurst, h.LogRate)
		h.keys.lines = auth.NewLogLimiter(h.LogBurst, h.LogRate)
		h.internal.lines = auth.NewLogLimiter(h.LogBurst, h.LogRate)
	})
	log := h.Log
	if log == nil {
		log = slog.Default()
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "validation_error", "method not allowed")
		return
	}
	tenant := r.PathValue("tenant")
	if tenant == "" {
		tenant = tenantFromPath(r.URL.Path)
	}
	if tenant == "" {
		writeError(w, http.StatusNotFound, "not_found", "not found")
		return
	}
	deny := func(status int, code, msg, subject string) {
		if h.Auditor != nil {
			h.Auditor.Deny(auth.Denial{Subject: subject, Tenant: tenant, Action: ExchangeAction,
				Resource: auth.TenantResource(tenant), Reason: msg})
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer`)
		}
		writeError(w, status, code, msg)
	}
	token, ok := httpx.BearerToken(r)
	if !ok {
		deny(http.StatusUnauthorized, "unauthorized", "missing bearer token", "")
		return
	}
	var req exchangeRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxExchangeBody+1))
	if err != nil || len(body) > maxExchangeBody {
		writeError(w, http.StatusBadRequest, "validation_error", "request body unreadable or too large")
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "validation_error", "request body is not valid JSON")
			return
		}
	}
	// Narrowing costs the product of the permissions and both lists.
	if len(req.Requested) > auth.MaxNarrowPatterns || len(req.Resources) > auth.MaxNarrowPatterns {
		writeError(w, http.StatusBadRequest, "validation_error", fmt.Sprintf("at most %d requested actions and %d resources", auth.MaxNarrowPatterns, auth.MaxNarrowPatterns))
		return
	}

	// The tenant is the client's text ('*' is a path character, %2F
	// unescapes to '/'); one that cannot be a name is no tenant, and
	// written into the permissions it would be a wildcard over tenants.
	if !auth.ValidName(tenant) {
		deny(http.StatusForbidden, "forbidden", "tenant not allowed", "")
		return
	}
	issuers, err := h.Issuers(r.Context(), tenant)
	switch {
	case errors.Is(err, ErrTenantNotAllowed):
		deny(http.StatusForbidden, "forbidden", "tenant not allowed", "")
		return
	case err != nil:
		h.internal.log(h, log, slog.LevelError, "token exchange: issuer lookup", slog.String("tenant", tenant), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	case len(issuers) == 0:
		deny(http.StatusForbidden, "forbidden", "no issuers configured", "")
		return
	}
	p, err := h.verifier.Verify(r.Context(), token, issuers)
	switch {
	case errors.Is(err, ErrIssuerNotAllowed):
		deny(http.StatusForbidden, "forbidden", "issuer not allowed", "")
		return
	case errors.Is(err, ErrIssuerConfig):
		h.internal.log(h, log, slog.LevelError, "token exchange: issuer config", slog.String("tenant", tenant), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	case errors.Is(err, ErrKeysUnavailable):
		h.keys.log(h, log, slog.LevelError, "token exchange: issuer keys", slog.String("tenant", tenant), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", "issuer keys unavailable")
		return
	case err != nil:
		h.invalid.log(h, log, slog.LevelInfo, "token exchange: invalid token", slog.String("tenant", tenant), slog.Any("err", err))
		deny(http.StatusUnauthorized, "unauthorized", "invalid token", "")
		return
	}
	perms, err := h.Permissions(r.Context(), tenant, p)
	if err != nil {
		h.internal.log(h, log, slog.LevelError, "token exchange: permissions", slog.String("tenant", tenant), slog.String("principal", p.ID), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	// A token for tenant carries rights in tenant only: admin:cluster or
	// another tenant's resources in a grant must not let a tenant's
	// identity provider mint a cluster administrator.
	perms = auth.ConfineToTenant(h.validPerms(perms, log), tenant)
	if len(req.Requested) > 0 || len(req.Resources) > 0 {
		perms, _ = auth.Narrow(perms, req.Requested, req.Resources) // perms are valid here
	}
	if len(perms) == 0 {
		deny(http.StatusForbidden, "forbidden", "no permissions", p.ID)
		return
	}
	now, exp := h.lifetime(p)
	felixToken, err := h.Signer.Issue(auth.Claims{Subject: p.ID, Tenant: tenant, Perms: perms, IssuedAt: now, ExpiresAt: exp})
	if err != nil {
		h.internal.log(h, log, slog.LevelError, "token exchange: sign", slog.String("tenant", tenant), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, ExchangeResponse{FelixToken: felixToken, ExpiresIn: exp.Unix() - now.Unix(), TokenType: "Bearer"})
}

// lifetime returns when an exchanged token is issued and when it expires:
// after the signer's TTL, but never after the upstream token does (an
// exchange must not extend a session its identity provider ended), and at
// least a second after now (an upstream token accepted within the clock
// skew may already be past its exp).
func (h *ExchangeHandler) lifetime(p *Principal) (now, exp time.Time) {
	now = time.Now()
	if h.Signer.Now != nil {
		now = h.Signer.Now()
	}
	now = now.Truncate(time.Second) // exp and iat are whole seconds
	ttl := h.Signer.TTL
	if ttl <= 0 {
		ttl = auth.DefaultTTL
	}
	exp = now.Add(ttl.Truncate(time.Second))
	if up := p.ExpiresAt.Truncate(time.Second); !up.IsZero() && up.Before(exp) {
		exp = up
	}
	if floor := now.Add(time.Second); exp.Before(floor) {
		exp = floor
	}
	return now, exp
}

// validPerms drops (and logs) permission strings that do not parse, as the
// reference drops unknown actions.
func (h *ExchangeHandler) validPerms(perms []string, log *slog.Logger) []string {
	out := perms[:0:0]
	for _, s := range perms {
		if _, err := auth.ParsePermission(s); err != nil {
			h.internal.log(h, log, slog.LevelWarn, "token exchange: dropping permission", slog.Any("err", err))
			continue
		}
		out = append(out, s)
	}
	return out
}

// tenantFromPath extracts {tenant} from /…/v1/tenants/{tenant}/token/exchange.
func tenantFromPath(path string) string {
	_, rest, ok := strings.Cut(path, "/v1/tenants/")
	if !ok {
		return ""
	}
	tenant, ok := strings.CutSuffix(rest, "/token/exchange")
	if !ok || tenant == "" || strings.Contains(tenant, "/") {
		return ""
	}
	return tenant
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	httpx.WriteJSON(w, status, ErrorResponse{Code: code, Message: msg})
}

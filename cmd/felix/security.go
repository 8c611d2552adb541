package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/felixmq/felix/auth"
	"github.com/felixmq/felix/auth/oidc"
	"github.com/felixmq/felix/internal/httpx"
	"github.com/felixmq/felix/server"
	"github.com/felixmq/felix/transport"
)

// securityFlags are the authentication, admin and control-plane settings
// shared by `felix serve` and `felix controlplane`.
type securityFlags struct {
	authMode                   string
	jwksFile, jwksURL          string
	jwksCAFile                 string
	jwksRefresh                time.Duration
	tokenKey                   string
	tokenIssuer, tokenAudience string
	adminToken                 string
	oidcConfig                 string
}

func addSecurityFlags(fl *pflag.FlagSet, s *securityFlags) {
	fl.StringVar(&s.authMode, "auth", "dev", "client authentication: dev (any token is accepted) or token (Felix tokens: EdDSA JWTs with permissions)")
	fl.StringVar(&s.jwksFile, "jwks-file", "", "JWKS file of the keys that sign Felix tokens, reloaded when it changes (--auth token)")
	fl.StringVar(&s.jwksURL, "jwks-url", "", "JWKS URL of the keys that sign Felix tokens, fetched every --jwks-refresh (--auth token)")
	fl.DurationVar(&s.jwksRefresh, "jwks-refresh", time.Minute, "how often --jwks-url is fetched and --jwks-file checked")
	fl.StringVar(&s.jwksCAFile, "jwks-ca-file", "", "PEM file of the CA that signs an https --jwks-url's certificate (a control plane served over HTTPS with a private CA), trusted besides the system's")
	fl.StringVar(&s.tokenKey, "token-key", "", "Ed25519 signing key (PEM) for Felix tokens; created on first start; default <data-dir>/token-key.pem. Its public key verifies tokens when no --jwks-file/--jwks-url is given")
	fl.StringVar(&s.tokenIssuer, "token-issuer", auth.DefaultIssuer, "required iss of Felix tokens")
	fl.StringVar(&s.tokenAudience, "token-audience", auth.DefaultAudience, "required aud of Felix tokens")
	fl.StringVar(&s.adminToken, "admin-token", "", "static admin credential of the control-plane API (Bearer); default: a random one kept in <data-dir>/admin-token")
	fl.StringVar(&s.oidcConfig, "oidc-config", "", "YAML file of the identity providers and grants per tenant for the token exchange endpoint")
}

func (s securityFlags) validate(bad func(key, msg string, args ...any)) {
	switch s.authMode {
	case "dev", "token":
	default:
		bad("auth", "unknown mode %q (want dev or token)", s.authMode)
	}
	if s.jwksFile != "" && s.jwksURL != "" {
		bad("jwks-file", "give --jwks-file or --jwks-url, not both")
	}
	if s.jwksRefresh < 10*time.Millisecond { // less is a busy loop
		bad("jwks-refresh", "must be at least 10ms, got %v", s.jwksRefresh)
	}
	if s.jwksFile != "" {
		if _, err := auth.LoadJWKSFile(s.jwksFile); err != nil {
			bad("jwks-file", "%v", err)
		}
	}
	if s.jwksCAFile != "" {
		if s.jwksURL == "" {
			bad("jwks-ca-file", "verifies the server of --jwks-url, which is not set")
		} else if _, err := transport.CertPoolFromFile(s.jwksCAFile); err != nil {
			bad("jwks-ca-file", "%v", err)
		}
	}
	if s.oidcConfig != "" {
		if _, err := loadOIDCConfig(s.oidcConfig); err != nil {
			bad("oidc-config", "%v", err)
		}
	}
}

// signingKey loads the token signing key, creating it on first start.
func (s securityFlags) signingKey(dataDir string, log *slog.Logger) (*auth.Signer, error) {
	path := s.tokenKey
	if path == "" {
		if dataDir == "" {
			return nil, errors.New("no --token-key and no --data-dir to keep one in")
		}
		path = filepath.Join(dataDir, "token-key.pem")
	}
	sg, err := auth.LoadSignerPEM(path)
	if err == nil {
		return sg, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if sg, err = auth.GenerateKey(); err != nil {
		return nil, err
	}
	if err := sg.SavePEM(path); err != nil {
		return nil, err
	}
	log.Info("token signing key created", "path", path, "kid", sg.KeyID())
	return sg, nil
}

// security is what the auth settings produce at start.
type security struct {
	authn    server.Authenticator
	verifier *auth.Verifier // nil in dev mode
	signer   *auth.Signer   // nil when tokens are verified with an external JWKS only
	admin    string         // static admin token
	// auditor counts and logs refused operations: the broker's and the
	// token exchange's, in one place (felix_access_denied_total).
	auditor *auth.Auditor
}

// setup builds the authenticator (and starts reloading an external key
// set until ctx ends), the signing key and, when this process serves a
// control-plane API (wantAdmin), the admin credential.
func (s securityFlags) setup(ctx context.Context, dataDir string, wantSigner, wantAdmin bool, log *slog.Logger) (*security, error) {
	sec := &security{authn: server.DevAuth{}, auditor: &auth.Auditor{Log: log}}
	var err error
	if wantAdmin {
		if sec.admin, err = adminToken(s.adminToken, dataDir, log); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
	}
	external := s.jwksFile != "" || s.jwksURL != ""
	if wantSigner || (s.authMode == "token" && !external) {
		if sec.signer, err = s.signingKey(dataDir, log); err != nil {
			return nil, fmt.Errorf("token key: %w", err)
		}
	}
	if s.authMode != "token" {
		return sec, nil
	}
	var keys auth.KeyProvider
	if sec.signer != nil {
		keys = sec.signer.KeySet()
	}
	if external {
		hc, err := httpClientWithCA(s.jwksCAFile) // a 10 s timeout per fetch, and the CA
		if err != nil {
			return nil, fmt.Errorf("--jwks-ca-file: %w", err)
		}
		src, err := auth.NewKeySource(ctx, auth.KeySourceOptions{File: s.jwksFile, URL: s.jwksURL, Interval: s.jwksRefresh, Log: log, HTTPClient: hc})
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		go src.Run(ctx)
		keys = src
	}
	sec.verifier = &auth.Verifier{Keys: keys, Issuer: s.tokenIssuer, Audience: s.tokenAudience}
	sec.authn = server.TokenAuth{Verifier: sec.verifier}
	return sec, nil
}

// adminTokenFile is the file in a data dir that keeps the generated admin
// credential of the control-plane API.
const adminTokenFile = "admin-token"

// adminToken returns the static admin credential: the flag's, or one kept
// in <data-dir>/admin-token (created with mode 0600 on first start).
func adminToken(flag, dataDir string, log *slog.Logger) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if dataDir == "" {
		return "", nil // no static credential: only admin Felix tokens
	}
	path := filepath.Join(dataDir, adminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	log.Info("admin token created for the control-plane API", "path", path)
	return tok, nil
}

// authorizeAdmin accepts a Felix token with the admin permission on the
// tenant (or on the cluster for cluster-wide routes). The control plane
// itself accepts the static admin token (controlplane.Options.AdminToken)
// before asking.
func (sec *security) authorizeAdmin(r *http.Request, tenant string) error {
	tok, _ := httpx.BearerToken(r)
	if sec.verifier == nil {
		return errors.New("not the admin token")
	}
	ownTenant := func() (string, error) {
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
			return "", errors.New("not an admin token")
		}
		tid, _ := claims["tid"].(string)
		return tid, nil
	}
	// A tenant's route takes a token of that tenant (admin:tenant:{t} or
	// admin:cluster) or of any tenant with admin:cluster; a cluster-wide
	// route, a token of its own tenant with admin:cluster.
	tid, onlyCluster := tenant, tenant == ""
	if onlyCluster {
		var err error
		if tid, err = ownTenant(); err != nil {
			return err
		}
	}
	claims, err := sec.verifier.Verify(tok, tid)
	if errors.Is(err, auth.ErrWrongTenant) && !onlyCluster {
		if tid, err = ownTenant(); err != nil {
			return err
		}
		onlyCluster = true
		claims, err = sec.verifier.Verify(tok, tid)
	}
	if err != nil {
		return err
	}
	m, err := auth.NewMatcher(claims.Perms)
	if err != nil {
		return err
	}
	if m.Allows(auth.ActionAdmin, auth.ClusterResource) || (!onlyCluster && m.Allows(auth.ActionAdmin, auth.TenantResource(tenant))) {
		return nil
	}
	return errors.New("token lacks the admin permission")
}

// oidcConfig is the --oidc-config file: per tenant, the identity
// providers whose tokens may be exchanged and what their principals get.
type oidcConfig struct {
	Tenants map[string]struct {
		Issuers []oidc.IssuerConfig `yaml:"issuers"`
		// Grants maps a principal id, "group:<name>" or "*" (everyone
		// verified) to permission strings.
		Grants map[string][]string `yaml:"grants"`
	} `yaml:"tenants"`
}

func loadOIDCConfig(path string) (*oidcConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c oidcConfig
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for t, tc := range c.Tenants {
		if !auth.ValidName(t) {
			return nil, fmt.Errorf("%s: tenant %q is not a valid name (1-255 bytes of UTF-8, no '*', '/', ':', whitespace or control characters)", path, t)
		}
		for i, is := range tc.Issuers {
			if err := is.Validate(); err != nil {
				return nil, fmt.Errorf("%s: tenant %s issuer %d: %w", path, t, i, err)
			}
		}
		for who, perms := range tc.Grants {
			if _, err := auth.NewMatcher(perms); err != nil {
				return nil, fmt.Errorf("%s: tenant %s grant %q: %w", path, t, who, err)
			}
		}
	}
	return &c, nil
}

// exchangeHandler builds the token exchange endpoint from the config.
func (c *oidcConfig) exchangeHandler(sg *auth.Signer, auditor *auth.Auditor, log *slog.Logger) *oidc.ExchangeHandler {
	return &oidc.ExchangeHandler{
		Signer:  sg,
		Auditor: auditor,
		Log:     log,
		Issuers: func(_ context.Context, tenant string) ([]oidc.IssuerConfig, error) {
			tc, ok := c.Tenants[tenant]
			if !ok {
				return nil, oidc.ErrTenantNotAllowed
			}
			return tc.Issuers, nil
		},
		Permissions: func(_ context.Context, tenant string, p *oidc.Principal) ([]string, error) {
			g := c.Tenants[tenant].Grants
			perms := append([]string(nil), g["*"]...)
			perms = append(perms, g[p.ID]...)
			for _, grp := range p.Groups {
				perms = append(perms, g["group:"+grp]...)
			}
			return perms, nil
		},
	}
}

// controlPlaneMounts are the unauthenticated endpoints mounted beside the
// admin API: the public keys of Felix tokens and, with an OIDC config, the
// token exchange.
func controlPlaneMounts(sec *security, oidcPath string, log *slog.Logger) (map[string]http.Handler, error) {
	mounts := map[string]http.Handler{}
	if sec.signer != nil {
		jwks, err := sec.signer.PublicJWKS()
		if err != nil {
			return nil, err
		}
		mounts["GET /v1/tenants/{tenant_id}/.well-known/jwks.json"] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(jwks)
		})
	}
	if oidcPath != "" {
		if sec.signer == nil {
			return nil, errors.New("--oidc-config needs a token signing key (--token-key)")
		}
		c, err := loadOIDCConfig(oidcPath)
		if err != nil {
			return nil, err
		}
		// {tenant}: the wildcard oidc.ExchangeHandler reads.
		mounts["POST /v1/tenants/{tenant}/token/exchange"] = c.exchangeHandler(sec.signer, sec.auditor, log)
	}
	return mounts, nil
}

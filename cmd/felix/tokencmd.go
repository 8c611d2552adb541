package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/felixmq/felix/auth"
)

// newTokenCmd is "felix token": operator tools for Felix tokens (EdDSA
// JWTs): make a signing key, issue a token, print the public JWKS.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make signing keys, issue Felix tokens, print the JWKS brokers verify with",
	}
	cmd.AddCommand(newTokenKeygenCmd(), newTokenIssueCmd(), newTokenJWKSCmd())
	return cmd
}

func newTokenKeygenCmd() *cobra.Command {
	var out, jwksOut string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen --out key.pem [--jwks jwks.json]",
		Short: "Generate an Ed25519 signing key (PKCS#8 PEM, mode 0600) and optionally its public JWKS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			s, err := auth.GenerateKey()
			if err != nil {
				return err
			}
			if force {
				if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			if err := s.SavePEM(out); err != nil {
				if errors.Is(err, os.ErrExist) {
					return fmt.Errorf("%s exists; use --force to replace the key (tokens it signed stop verifying)", out)
				}
				return err
			}
			if jwksOut != "" {
				doc, err := s.PublicJWKS()
				if err != nil {
					return err
				}
				if err := os.WriteFile(jwksOut, append(doc, '\n'), 0o644); err != nil {
					return fmt.Errorf("write jwks: %w", err)
				}
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "key %s written (kid %s)\n", out, s.KeyID())
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "private key file to create (PEM, PKCS#8)")
	cmd.Flags().StringVar(&jwksOut, "jwks", "", "also write the public JWKS to this file (give it to brokers)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing key file")
	return cmd
}

func newTokenIssueCmd() *cobra.Command {
	var keyFile, tenant, subject, issuer, audience string
	var perms []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "issue --key key.pem --tenant T --sub NAME --perm ACTION:RESOURCE... [--ttl 15m]",
		Short: "Print a Felix token signed with a key",
		Long: `Print a Felix token (an EdDSA JWT) signed with the key in --key.

Permissions are action:resource patterns, '*' matching any run of characters:
  --perm stream.publish:stream:t1/*/*   --perm cache.read:cache:t1/ns/*
  --perm tenant.manage:tenant:t1        (everything inside tenant t1)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" || tenant == "" {
				return errors.New("--key and --tenant are required")
			}
			if ttl <= 0 {
				return errors.New("--ttl must be positive")
			}
			s, err := auth.LoadSignerPEM(keyFile)
			if err != nil {
				return err
			}
			s.TTL = ttl
			tok, err := s.Issue(auth.Claims{Issuer: issuer, Audience: audience, Subject: subject, Tenant: tenant, Perms: perms})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (from felix token keygen)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant the token is for (tid)")
	cmd.Flags().StringVar(&subject, "sub", "", "subject (who the token names; appears in audit logs)")
	cmd.Flags().StringArrayVar(&perms, "perm", nil, "permission action:resource (repeatable)")
	cmd.Flags().DurationVar(&ttl, "ttl", auth.DefaultTTL, "lifetime")
	cmd.Flags().StringVar(&issuer, "iss", auth.DefaultIssuer, "issuer (iss)")
	cmd.Flags().StringVar(&audience, "aud", auth.DefaultAudience, "audience (aud)")
	return cmd
}

func newTokenJWKSCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "jwks --key key.pem",
		Short: "Print the public JWKS of a key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("--key is required")
			}
			s, err := auth.LoadSignerPEM(keyFile)
			if err != nil {
				return err
			}
			doc, err := s.PublicJWKS()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(doc))
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file")
	return cmd
}

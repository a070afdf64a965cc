package main

import (
	"context"
	"flag"

	"github.com/tokenhttp/tokenhttp/source"
)

// grantFlags are the flags of the refresh_token, jwt-bearer and
// token-exchange grants. Tokens come from files, never from argv.
type grantFlags struct {
	refreshTokenFile, assertionFile, subjectTokenFile string
	subjectTokenType, requestedTokenType              string
	audience, resource                                repeated
}

func (g *grantFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.refreshTokenFile, "refresh-token-file", "", "file that holds the refresh token to start from (--grant refresh_token)")
	fs.StringVar(&g.assertionFile, "assertion-file", "", "file that holds the JWT assertion, read at each request: a projected service account token, say (--grant jwt-bearer)")
	fs.StringVar(&g.subjectTokenFile, "subject-token-file", "", "file that holds the subject token, read at each request (--grant token-exchange)")
	fs.StringVar(&g.subjectTokenType, "subject-token-type", "", "subject_token_type (default urn:ietf:params:oauth:token-type:access_token)")
	fs.StringVar(&g.requestedTokenType, "requested-token-type", "", "requested_token_type (--grant token-exchange)")
	fs.Var(&g.audience, "audience", "audience of the exchanged token; repeat for several (--grant token-exchange)")
	fs.Var(&g.resource, "resource", "resource URI of the exchanged token (RFC 8707); repeat for several (--grant token-exchange)")
}

// apply puts the grant's fields in cfg; tr learns every token read.
func (g *grantFlags) apply(cfg *source.Config, tr *tracer) error {
	fromFile := func(path, label string) func(context.Context) (string, error) {
		read := source.AssertionFile(path)
		return func(ctx context.Context) (string, error) {
			v, err := read(ctx)
			if err == nil {
				tr.learn(v, label)
			}
			return v, err
		}
	}
	switch cfg.GrantType {
	case source.RefreshToken:
		if g.refreshTokenFile == "" {
			return usagef("--grant refresh_token needs --refresh-token-file FILE")
		}
		v, err := readSecretFile(g.refreshTokenFile, "--refresh-token-file")
		if err != nil {
			return err
		}
		tr.learn(v, "refresh_token from --refresh-token-file "+g.refreshTokenFile)
		cfg.RefreshToken = v
	case source.JWTBearer:
		if g.assertionFile == "" {
			return usagef("--grant jwt-bearer needs --assertion-file FILE")
		}
		if err := checkFile(g.assertionFile, "--assertion-file"); err != nil {
			return err
		}
		cfg.Assertion = fromFile(g.assertionFile, "assertion from --assertion-file "+g.assertionFile)
	case source.TokenExchange:
		if g.subjectTokenFile == "" {
			return usagef("--grant token-exchange needs --subject-token-file FILE")
		}
		if err := checkFile(g.subjectTokenFile, "--subject-token-file"); err != nil {
			return err
		}
		cfg.SubjectToken = fromFile(g.subjectTokenFile, "subject_token from --subject-token-file "+g.subjectTokenFile)
		cfg.SubjectTokenType = g.subjectTokenType
		cfg.Exchange = source.ExchangeParams{Audience: g.audience, Resource: g.resource, RequestedTokenType: g.requestedTokenType}
	}
	return nil
}

package source_test

import (
	"context"
	"fmt"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// A source's token is exchanged (RFC 8693) for a downstream API's token:
// SubjectFrom makes the chain one line.
func ExampleSubjectFrom() {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	identity, _ := source.New(source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: srv.Client()})
	defer identity.Close()
	orders, err := source.New(source.Config{
		TokenURL: srv.TokenURL, GrantType: source.TokenExchange, HTTPClient: srv.Client(),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
		SubjectToken: source.SubjectFrom(identity),
		Exchange:     source.ExchangeParams{Audience: []string{"orders"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer orders.Close()
	tok, err := orders.Token(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tok.TokenType, tok.Extra["issued_token_type"])
	// Output: Bearer urn:ietf:params:oauth:token-type:access_token
}

// A static token is served as given; once an API rejected it, Token says
// so instead of sending it again.
func ExampleStaticToken() {
	tok := &source.Token{AccessToken: "issued-by-hand", TokenType: "Bearer"}
	ts := source.StaticToken(tok)
	fmt.Println(ts.Invalidate(tok))
	_, err := ts.Token(context.Background())
	fmt.Println(err)
	// Output:
	// true
	// source: static token rejected
}

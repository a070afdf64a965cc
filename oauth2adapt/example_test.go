package oauth2adapt_test

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// A library that takes an oauth2.TokenSource gets a VaultID source: the
// provider's own "VCSchema ..." header, the only one its API accepts, goes
// through x/oauth2's Transport, and the token is fetched once.
func ExampleToOAuth2() {
	idp := sourcetest.NewVaultID(sourcetest.Options{}) // a token endpoint and an API for this example
	defer idp.Close()

	src, err := source.New(source.Config{
		Provider:     source.VaultID,
		TokenURL:     idp.TokenURL,
		HTTPClient:   idp.Client(),
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		Username:     sourcetest.DefaultVaultIDUsername,
		Cloud:        "cloud-1",
		PasswordFunc: func(context.Context) (string, error) { return "123456", nil }, // the user's one-time password
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()

	ts := oauth2adapt.ToOAuth2(src)
	client := oauth2.NewClient(context.Background(), ts)
	for range 2 {
		resp, err := client.Get(idp.ResourceURL)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	tok, _ := ts.Token()
	fmt.Println("type:", tok.Type(), "refresh token copied:", tok.RefreshToken != "")
	fmt.Println("token requests:", idp.TokenRequests())
	// Output:
	// 200 OK
	// 200 OK
	// type: VCSchema refresh token copied: false
	// token requests: 1
}

// Any x/oauth2 source behind tokenhttp's client: here x/oauth2's
// clientcredentials against an RFC 6749 endpoint.
func ExampleFromOAuth2() {
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()

	cc := clientcredentials.Config{
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		TokenURL:     idp.TokenURL,
	}
	client := tokenhttp.NewClient(oauth2adapt.FromOAuth2(cc.TokenSource(context.Background())))
	for range 2 {
		resp, err := client.Get(idp.ResourceURL)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("token requests:", idp.TokenRequests())
	// Output:
	// 200 OK
	// 200 OK
	// token requests: 1
}

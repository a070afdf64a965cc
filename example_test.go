package tokenhttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// An http.Client that gets a client_credentials token from an RFC 6749
// endpoint, reuses it across calls, and attaches it to each request.
func ExampleNewClient() {
	idp := sourcetest.NewStandard(sourcetest.Options{}) // a token endpoint and an API for this example
	defer idp.Close()

	src, err := source.New(source.Config{
		TokenURL:     idp.TokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		Scopes:       []string{"orders:read"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := tokenhttp.NewClient(src)
	for range 3 {
		resp, err := client.Get(idp.ResourceURL)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("token requests:", idp.TokenRequests())
	// Output:
	// 200 OK
	// 200 OK
	// 200 OK
	// token requests: 1
}

// A cached source used directly: the token is fetched once and shared; its
// printed form shows no secret.
func Example_cachedSource() {
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()

	src, _ := source.New(source.Config{
		TokenURL:     idp.TokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
	})
	ctx := context.Background()
	a, _ := src.Token(ctx)
	b, _ := src.Token(ctx)
	fmt.Println(a == b, a.Valid(), a.TokenType)
	fmt.Println(strings.Contains(fmt.Sprintf("%+v", a), a.AccessToken))
	fmt.Println("token requests:", idp.TokenRequests())
	// Output:
	// true true Bearer
	// false
	// token requests: 1
}

// The API revokes the token: the Transport's 401 path drops it, fetches a
// new one, and retries the request once.
func ExampleTransport_revoked() {
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()
	src, _ := source.New(source.Config{
		TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
	})
	client := &http.Client{Transport: tokenhttp.NewTransport(src, tokenhttp.WithBase(http.DefaultTransport))}

	get := func() string {
		resp, err := client.Get(idp.ResourceURL)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return resp.Status
	}
	fmt.Println(get())
	idp.RevokeAll()
	fmt.Println(get())
	fmt.Println("token requests:", idp.TokenRequests())
	// Output:
	// 200 OK
	// 200 OK
	// token requests: 2
}

// When the token endpoint refuses the credentials, the request is not sent
// and the *source.Error comes through http.Client.
func ExampleNewClient_refused() {
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()
	src, _ := source.New(source.Config{
		TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID, ClientSecret: "wrong-secret",
	})
	_, err := tokenhttp.NewClient(src).Get(idp.ResourceURL)
	var te *source.Error
	if errors.As(err, &te) {
		fmt.Println(te.StatusCode, te.Code)
	}
	fmt.Println("API requests:", idp.ResourceRequests())
	// Output:
	// 401 invalid_client
	// API requests: 0
}

// Middleware in front of a gateway's upstream handler: the upstream sees
// the gateway's credential, not the one the client sent.
func ExampleMiddleware() {
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()
	src, _ := source.New(source.Config{
		TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
	})
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "), r.Header.Get("Authorization") != "Bearer forged")
	})
	gw := httptest.NewServer(tokenhttp.Middleware(src)(upstream))
	defer gw.Close()

	req, _ := http.NewRequest("GET", gw.URL, nil)
	req.Header.Set("Authorization", "Bearer forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	// Output:
	// true true
}

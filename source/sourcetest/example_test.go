package sourcetest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func ExampleNewStandard() {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()

	resp, err := http.PostForm(srv.TokenURL, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {sourcetest.DefaultClientID},
		"client_secret": {sourcetest.DefaultClientSecret},
	})
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, tok.TokenType, tok.ExpiresIn)

	req, _ := http.NewRequest("GET", srv.ResourceURL, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, srv.Issued(), srv.Requests("client_credentials"))
	// Output:
	// 200 Bearer 3600
	// 200 1 1
}

func ExampleServer_FailNext() {
	srv := sourcetest.NewSerproID(sourcetest.Options{})
	defer srv.Close()
	srv.FailNext(1, http.StatusInternalServerError, "2")

	resp, err := http.PostForm(srv.TokenURL, url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {sourcetest.DefaultClientID},
		"client_secret": {sourcetest.DefaultClientSecret},
	})
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var e struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&e)
	fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"), e.Code)
	// Output: 500 2 FALHA_TOKEN_MANUTENCAO_APLICACAO
}

// A PIX-style client: a certificate from the test CA, tls_client_auth
// (client_id in the body, no secret), and a token bound to the
// certificate.
func ExampleNewMTLS() {
	srv := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{})
	defer srv.Close()
	client := srv.ClientWithCertificate(srv.CA.ClientCertificate("my-client"))

	resp, err := client.PostForm(srv.TokenURL, url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {sourcetest.DefaultClientID},
	})
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string            `json:"access_token"`
		Cnf         map[string]string `json:"cnf"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, len(tok.Cnf["x5t#S256"]))

	// The token works only over a connection with the same certificate.
	for _, c := range []*http.Client{client, srv.ClientWithCertificate(srv.CA.ClientCertificate("someone-else"))} {
		req, _ := http.NewRequest("GET", srv.ResourceURL, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := c.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 200 43
	// 200
	// 401
}

// A client that must survive an outage and a revocation, over the source
// and tokenhttp packages.
func ExampleNewGestaoPlus() {
	srv := sourcetest.NewGestaoPlus(sourcetest.Options{})
	defer srv.Close()
	srv.FailNext(1, http.StatusServiceUnavailable, "") // the first fetch gets a 503
	src, err := source.New(source.Config{Provider: source.GestaoPlus, TokenURL: srv.TokenURL,
		Username: sourcetest.DefaultUsername, Password: sourcetest.DefaultPassword, HTTPClient: srv.Client()})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	client := tokenhttp.NewClient(src)
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.ResourceURL) // the fetch is retried after the 503
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, srv.TokenRequests(), srv.Issued())

	srv.RevokeAll()
	resp, err = client.Get(srv.ResourceURL) // 401; the revoked refresh token refused; the password grant; 200
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, srv.TokenRequests(), srv.Issued())
	// Output:
	// 200 2 1
	// 200 4 2
}

package sourcetest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

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

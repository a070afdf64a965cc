package tokenhttp_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// An API gateway: requests under /orders go to the orders API with the
// gateway's own credential for it, whatever Authorization the client sent.
//
// The two halves share one source and do different jobs. The middleware
// chooses the route, puts the credential on the request (so that nothing
// the client sent goes upstream as a credential), and answers itself with
// a problem+json reply when there is no route or no token. The
// ReverseProxy's Transport, from tokenhttp.NewTransport, sets the same
// header again on its own copy of the outgoing request (a cached token:
// no fetch, no lock), and when the upstream answers 401 it drops that
// token, gets a new one and retries once.
func Example_gateway() {
	// The orders API and its token endpoint: a sourcetest emulator, whose
	// ResourceURL answers 200 only to a token the endpoint issued.
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()

	orders, err := source.New(source.Config{
		TokenURL:     idp.TokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer orders.Close()

	upstream, _ := url.Parse(idp.ResourceURL)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *upstream // every /orders path goes to the emulator's resource
			pr.Out.URL, pr.Out.Host = &u, ""
		},
		Transport: tokenhttp.NewTransport(orders),
	}
	gateway := tokenhttp.RoutedMiddleware(
		tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/orders": orders}),
		tokenhttp.WithSkipPaths("/healthz"),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("/orders/", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := tokenhttp.TokenFromContext(r.Context()) // the token the middleware put on r
		fmt.Println("proxy gets the gateway's credential:", r.Header.Get("Authorization") == tok.HeaderValue())
		proxy.ServeHTTP(w, r)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	gw := httptest.NewServer(gateway(mux))
	defer gw.Close()

	call := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+path, nil)
		req.Header.Set("Authorization", "Bearer forged-by-the-client") // replaced by the gateway's
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(path, resp.Status, resp.Header.Get("Content-Type"))
	}

	call("/orders/42")
	idp.RevokeAll() // the upstream no longer accepts the gateway's token
	call("/orders/43")
	call("/billing/1")
	call("/healthz")
	fmt.Println("token requests:", idp.TokenRequests())
	fmt.Println("upstream requests:", idp.ResourceRequests())
	// Output:
	// proxy gets the gateway's credential: true
	// /orders/42 200 OK application/json
	// proxy gets the gateway's credential: true
	// /orders/43 200 OK application/json
	// /billing/1 404 Not Found application/problem+json
	// /healthz 200 OK text/plain; charset=utf-8
	// token requests: 2
	// upstream requests: 3
}

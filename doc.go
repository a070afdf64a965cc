// Package tokenhttp gets OAuth2 tokens from real-world token endpoints,
// keeps them fresh, and attaches them to outgoing HTTP requests.
//
// A source.TokenSource describes the credential and the endpoint's dialect
// (RFC 6749, or one of the providers in package source); a Transport puts
// its token on every request, and when the API answers 401 drops exactly
// that token, gets a new one, and retries the request once:
//
//	src, err := source.New(source.Config{
//		TokenURL:     "https://auth.example.com/oauth/token",
//		ClientID:     "my-client",
//		ClientSecret: os.Getenv("CLIENT_SECRET"),
//		Scopes:       []string{"orders:read"},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	client := tokenhttp.NewClient(src)
//	resp, err := client.Get("https://api.example.com/orders")
//
// The source fetches once for any number of concurrent callers, renews the
// token ahead of expiry in the background, and never shows a secret in an
// error, a log line or %v of any value. A token goes only to the origin it
// was meant for: never to another host after a redirect, and never over
// cleartext http except to loopback unless WithInsecureHTTP is given.
//
// Middleware does the same for a server, such as an API gateway in front
// of an httputil.ReverseProxy: the upstream credential replaces whatever
// the client sent. RoutedMiddleware chooses the source per request, by
// path prefix with PrefixRoutes.
//
// Package source holds the token sources and their errors; sourcetest
// emulates token endpoints for tests; oauth2adapt converts to and from
// golang.org/x/oauth2.
package tokenhttp

package oauth2adapt

import (
	"fmt"
	"io"
)

// The adapters hold tokens and the sources they wrap, which may hold
// secrets in fields fmt would print: every verb prints their name only.

// Format implements fmt.Formatter: every verb prints the adapter's name.
func (a *toOAuth2) Format(f fmt.State, _ rune) { io.WriteString(f, "oauth2adapt.ToOAuth2") }

// Format implements fmt.Formatter: every verb prints the adapter's name.
func (s *fromOAuth2) Format(f fmt.State, _ rune) { io.WriteString(f, "oauth2adapt.FromOAuth2") }

// Format implements fmt.Formatter: every verb prints
// "oauth2adapt.RPCCredentials", never the source or its token.
func (c *RPCCredentials) Format(f fmt.State, _ rune) { io.WriteString(f, "oauth2adapt.RPCCredentials") }

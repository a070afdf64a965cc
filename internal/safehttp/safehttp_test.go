package safehttp_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"[::1]", true},
		{"localhost", true},
		{"LocalHost", true},
		{"api.localhost", false},
		{"localhost.example.com", false},
		{"example.com", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"", false},
		{"LOCALHOST.", true},
		{"::ffff:127.0.0.1", true},
		{"[::1", false},
		{"::1%lo", false},
		{"127.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := safehttp.IsLoopback(tt.host); got != tt.want {
				t.Errorf("IsLoopback(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

// TestIsLoopbackAllocs: the Transport asks on every cleartext request.
func TestIsLoopbackAllocs(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "[::1]", "::1", "LocalHost", "localhost.", "example.com", "10.0.0.1", "::ffff:127.0.0.1"} {
		if n := testing.AllocsPerRun(100, func() { safehttp.IsLoopback(host) }); n != 0 {
			t.Errorf("IsLoopback(%q) allocates %v times, want 0", host, n)
		}
	}
}

func TestCheckHeaderToken(t *testing.T) {
	tests := []struct {
		access, authz string
		wantErr       bool
	}{
		{"abc", "", false},
		{"", "VCSchema abc", false},
		{"", "", true},
		{"a\r\nb", "", true},
		{"", "VCSchema a\r\nb", true},
		{"", "VCSchema", true},
		{"", "VCSchema abc ", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q %q", tt.access, tt.authz), func(t *testing.T) {
			err := safehttp.CheckHeaderToken(tt.access, tt.authz)
			if (err != nil) != tt.wantErr {
				t.Errorf("CheckHeaderToken(%q, %q) = %v, want error %v", tt.access, tt.authz, err, tt.wantErr)
			}
			if err != nil && tt.access != "" && strings.Contains(err.Error(), tt.access) {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://auth.example/token", "https://auth.example/token"},
		{"https://auth.example/token?api_key=s3cret&b=1&a=2", "https://auth.example/token?a=M&api_key=M&b=M"},
		{"https://user:s3cret@auth.example/token#frag", "https://user:xxxxx@auth.example/token"},
		{"/orders?api_key=s3cret", "/orders?api_key=M"},
		{"https://auth.example/%zz", "[unparsable URL]"},
	}
	for _, tt := range tests {
		if got := safehttp.RedactURL(tt.in, "M"); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

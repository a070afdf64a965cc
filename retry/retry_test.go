package retry_test

import (
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/retry"
)

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       retry.Policy
		wantErr bool
	}{
		{"zero", retry.Policy{}, false},
		{"set", retry.Policy{MaxAttempts: 4, MinWait: time.Millisecond, MaxWait: time.Second, MaxRetryAfter: time.Minute}, false},
		{"negative attempts", retry.Policy{MaxAttempts: -1}, true},
		{"negative MinWait", retry.Policy{MinWait: -1}, true},
		{"negative MaxWait", retry.Policy{MaxWait: -1}, true},
		{"negative MaxRetryAfter", retry.Policy{MaxRetryAfter: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate: got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestBreakerSettingsValidate(t *testing.T) {
	tests := []struct {
		name    string
		s       retry.BreakerSettings
		wantErr bool
	}{
		{"zero", retry.BreakerSettings{}, false},
		{"set", retry.BreakerSettings{Failures: 2, OpenFor: time.Second}, false},
		{"negative Failures", retry.BreakerSettings{Failures: -1}, true},
		{"negative OpenFor", retry.BreakerSettings{OpenFor: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate: got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

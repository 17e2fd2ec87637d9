package retention

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		policy Policy
		want   []string // each must appear; none means valid
	}{
		{"zero policy", Policy{}, nil},
		{"config defaults", Policy{Local: LocalPolicy{KeepWithin: 14 * day, KeepLast: 2},
			Vault: VaultPolicy{Daily: 30, Weekly: 12, Monthly: 24, Yearly: 10}}, nil},
		{"yearly 99", Policy{Vault: VaultPolicy{Yearly: 99}}, nil},
		{"yearly 100", Policy{Vault: VaultPolicy{Yearly: 100}},
			[]string{"invalid retention policy: vault yearly count 100 exceeds the maximum of 99 years"}},
		{"negative keep_within", Policy{Local: LocalPolicy{KeepWithin: -time.Hour}},
			[]string{"local keep_within is negative (-1h0m0s)"}},
		{"negative keep_last", Policy{Local: LocalPolicy{KeepLast: -1}},
			[]string{"local keep_last is negative (-1)"}},
		{"negative daily", Policy{Vault: VaultPolicy{Daily: -1}}, []string{"vault daily count is negative (-1)"}},
		{"negative weekly", Policy{Vault: VaultPolicy{Weekly: -2}}, []string{"vault weekly count is negative (-2)"}},
		{"negative monthly", Policy{Vault: VaultPolicy{Monthly: -3}}, []string{"vault monthly count is negative (-3)"}},
		{"negative yearly", Policy{Vault: VaultPolicy{Yearly: -4}}, []string{"vault yearly count is negative (-4)"}},
		{"every error is reported", Policy{Local: LocalPolicy{KeepLast: -1}, Vault: VaultPolicy{Daily: -1, Yearly: 120}},
			[]string{"keep_last is negative", "daily count is negative", "yearly count 120 exceeds"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("Validate() = %v, want an ErrInvalidPolicy", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if got := strings.Count(err.Error(), "invalid retention policy"); got != len(c.want) {
				t.Errorf("Validate() reported %d errors, want %d: %v", got, len(c.want), err)
			}
		})
	}
}

func TestVaultPolicyIsEmpty(t *testing.T) {
	if !(VaultPolicy{}).IsEmpty() {
		t.Errorf("VaultPolicy{}.IsEmpty() = false, want true")
	}
	if (VaultPolicy{Yearly: 1}).IsEmpty() {
		t.Errorf("VaultPolicy{Yearly: 1}.IsEmpty() = true, want false")
	}
}

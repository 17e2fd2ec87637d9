package retention

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	cases := []struct {
		v    interface{ String() string }
		want string
	}{
		{Local, "local"}, {Vault, "vault"}, {Both, "both"}, {Tier(0), "Tier(0)"},
		{Complete, "complete"}, {ReplicationPending, "replication-pending"}, {State(9), "State(9)"},
		{KeepLocal, "keep-local"}, {Offload, "offload"}, {KeepInVault, "keep-in-vault"}, {Expire, "expire"},
		{Action(0), "Action(0)"},
	}
	for _, c := range cases {
		if got := c.v.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}

func TestPointJSONRoundTrip(t *testing.T) {
	for _, d := range []Decision{
		{Point: Point{ID: "a", Source: "home", Tier: Local, State: Complete}, Action: KeepLocal},
		{Point: Point{ID: "b", Tier: Vault, State: ReplicationPending}, Action: KeepInVault},
		{Point: Point{ID: "c", Tier: Both}, Action: Offload},
		{Point: Point{ID: "d", Tier: Vault}, Action: Expire},
	} {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal %v: %v", d, err)
		}
		var got Decision
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if got.Point != d.Point || got.Action != d.Action {
			t.Errorf("round trip of %s = %+v, want %+v", b, got, d)
		}
	}
}

func TestTextErrors(t *testing.T) {
	for _, v := range []interface{ MarshalText() ([]byte, error) }{Tier(0), State(5), Action(9)} {
		if b, err := v.MarshalText(); err == nil || !strings.Contains(err.Error(), "retention: unknown") {
			t.Errorf("MarshalText(%v) = %q, %v; want an unknown-value error", v, b, err)
		}
	}
	for _, js := range []string{`{"tier":"tape"}`, `{"state":"lost"}`} {
		var p Point
		if err := json.Unmarshal([]byte(js), &p); err == nil || !strings.Contains(err.Error(), "retention: unknown") {
			t.Errorf("Unmarshal(%s) = %v, want an unknown-value error", js, err)
		}
	}
	var a Action
	if err := a.UnmarshalText([]byte("delete")); err == nil || !strings.Contains(err.Error(), `unknown action "delete"`) {
		t.Errorf("UnmarshalText(delete) = %v, want an unknown-action error", err)
	}
}

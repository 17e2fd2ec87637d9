package retention

import (
	"fmt"
	"time"
)

// Tier says where a recovery point is stored.
type Tier int

// The tiers. The zero value is invalid so that a point whose tier was never
// set is refused instead of being treated as local or vault.
const (
	// Local is a point only in the store on local disk.
	Local Tier = iota + 1
	// Vault is a point only in the vault.
	Vault
	// Both is a point archived in the vault whose local copy is still on
	// disk, for example while its replication is pending or after a run
	// stopped between archiving and the local delete.
	Both
)

var tierNames = map[Tier]string{Local: "local", Vault: "vault", Both: "both"}

// String returns "local", "vault" or "both".
func (t Tier) String() string { return name(tierNames, t, "Tier") }

// MarshalText encodes the tier as its String form.
func (t Tier) MarshalText() ([]byte, error) { return marshal(tierNames, t, "tier") }

// UnmarshalText decodes a tier written by MarshalText.
func (t *Tier) UnmarshalText(b []byte) error { return unmarshal(tierNames, t, b, "tier") }

// State is the completion state of a recovery point.
type State int

// The states. The zero value is Complete.
const (
	// Complete is a point whose every copy is confirmed.
	Complete State = iota
	// ReplicationPending is a vault point confirmed on the primary copy
	// whose secondary (GRS) copy is not confirmed yet. It is never expired.
	ReplicationPending
)

var stateNames = map[State]string{Complete: "complete", ReplicationPending: "replication-pending"}

// String returns "complete" or "replication-pending".
func (s State) String() string { return name(stateNames, s, "State") }

// MarshalText encodes the state as its String form.
func (s State) MarshalText() ([]byte, error) { return marshal(stateNames, s, "state") }

// UnmarshalText decodes a state written by MarshalText.
func (s *State) UnmarshalText(b []byte) error { return unmarshal(stateNames, s, b, "state") }

// Action is what a plan does with one recovery point.
type Action int

// The actions. The zero value is invalid.
const (
	// KeepLocal leaves the point on local disk (and in the vault, if it is
	// there too).
	KeepLocal Action = iota + 1
	// Offload moves the point from local disk to the vault, or finishes
	// that move for a point already in both tiers.
	Offload
	// KeepInVault leaves the point in the vault.
	KeepInVault
	// Expire deletes the point from the vault.
	Expire
)

var actionNames = map[Action]string{
	KeepLocal:   "keep-local",
	Offload:     "offload",
	KeepInVault: "keep-in-vault",
	Expire:      "expire",
}

// String returns "keep-local", "offload", "keep-in-vault" or "expire".
func (a Action) String() string { return name(actionNames, a, "Action") }

// MarshalText encodes the action as its String form.
func (a Action) MarshalText() ([]byte, error) { return marshal(actionNames, a, "action") }

// UnmarshalText decodes an action written by MarshalText.
func (a *Action) UnmarshalText(b []byte) error { return unmarshal(actionNames, a, b, "action") }

// Point is one recovery point as retention sees it.
type Point struct {
	ID     string    `json:"id"`
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	Tier   Tier      `json:"tier"`
	State  State     `json:"state"`
}

func name[T ~int](names map[T]string, v T, typ string) string {
	if s, ok := names[v]; ok {
		return s
	}
	return fmt.Sprintf("%s(%d)", typ, int(v))
}

func marshal[T ~int](names map[T]string, v T, what string) ([]byte, error) {
	if s, ok := names[v]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("retention: unknown %s %d", what, int(v))
}

func unmarshal[T ~int](names map[T]string, v *T, b []byte, what string) error {
	for k, s := range names {
		if s == string(b) {
			*v = k
			return nil
		}
	}
	return fmt.Errorf("retention: unknown %s %q", what, b)
}

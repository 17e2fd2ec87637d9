// Package retention is pure policy: given recovery points (time, tier,
// state), a policy and the current time, it decides for each point whether
// it stays local, is offloaded, is kept in the vault or expires. It does no
// I/O and reads no clock.
package retention

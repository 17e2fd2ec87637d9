// Package retention is pure policy: given recovery points (time, tier,
// state), a policy and the current time, it decides for each point whether
// it stays local, is offloaded, is kept in the vault or expires. It does no
// I/O and reads no clock.
//
// Apply runs two stages per data source, each independent of every other
// source:
//
// Short term (the store on local disk). A point on local disk stays there
// (KeepLocal) when it is younger than Local.KeepWithin, counted from now, or
// when it is among the Local.KeepLast newest points on local disk, so that a
// source whose backups stopped still has fast restores. Every other local
// point is offloaded (Offload). A local point is never expired directly:
// safety invariant 1 lets a point leave the disk only through the vault, so
// a point the vault policy does not want is offloaded and the next prune
// expires it (its reasons say so). A point exactly KeepWithin old is no
// longer "younger". KeepLast counts points on disk only (tiers Local and
// Both): a point only in the vault gives no fast restore. A point in both
// tiers (archived, local copy not yet deleted) is on disk: KeepLocal leaves
// both copies alone, Offload tells the offloader to finish the move.
//
// Long term (the vault). The candidates are the points already in the vault
// and the points being offloaded by this plan (they are about to be in the
// vault, so they take part in the buckets). Points that stay on local disk
// do not: the vault counts are for what the vault holds. The
// candidates are walked newest first and each rule (daily, weekly, monthly,
// yearly) keeps the newest point of each of its last N buckets. Buckets are
// calendar days, ISO weeks, months and years in the given location, so a
// 23- or 25-hour DST day is one day and month ends need no arithmetic. A
// count N means the N newest buckets that hold a point, not the last N
// calendar days: a machine that was off for a month must not see its vault
// history expire because no new points arrived. A
// point kept by several rules is kept once with all its reasons. Vault
// points no rule keeps expire (Expire).
//
// Safety rules, each tested:
//   - A point stamped after now is never offloaded or expired, and it does
//     not use up a KeepLast slot or a bucket; its reason says "in the
//     future".
//   - A point whose replication is pending is never expired.
//   - A vault policy whose counts are all zero expires nothing: every vault
//     point is kept with the reason "vault policy is empty". There is no way
//     to expire everything through the policy; removing a whole vault is a
//     separate, explicit act.
//   - Policies with negative counts or durations, or with more than 99
//     yearly points, are refused by Validate with an error naming the field.
package retention

// Package s3fault is a fault-injecting S3 proxy for tests: an HTTP reverse
// proxy that sits between a minio-go client (tapeless's S3 backend) and a
// real MinIO server and, following a script of rules, answers some
// requests itself or damages what passes through: 500 and 503 replies,
// connection resets, hangs, a 200 to a PUT that stores nothing, truncated
// or bit-flipped GET bodies, listings that drop keys or come back empty
// for one prefix, odd page sizes, continuation tokens that loop, and a
// skewed Date header.
//
// Point the client's endpoint at Proxy.Host. Requests are forwarded with
// the Host header the client signed, so MinIO's SigV4 check passes; the
// only change that touches signed parts (a rewritten max-keys) is re-signed
// with the test keys. Rules draw from a PRNG seeded by the caller, so a
// failing run replays from its seed, and Proxy.Tally counts what was
// injected by kind. Only tests import this package.
package s3fault

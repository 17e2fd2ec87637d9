// Package storage owns where bytes live: the Backend interface for named,
// write-once objects and its implementations (file, S3, replicated,
// throttled, fault-injecting), plus vault configuration, vault credentials
// and registration records. It knows nothing of the archive format.
package storage

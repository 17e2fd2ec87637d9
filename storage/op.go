package storage

// Op names a Backend method: the call a Fallback record describes, and the
// call a test fault wrapper (storagetest.Fault) counts or fails.
type Op string

// The Backend methods.
const (
	OpSave   Op = "save"
	OpLoad   Op = "load"
	OpStat   Op = "stat"
	OpList   Op = "list"
	OpRemove Op = "remove"
)

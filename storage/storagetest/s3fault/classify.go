package s3fault

import (
	"net/http"
	"strings"
)

// Op is the kind of S3 operation a request is, as a rule matches it.
type Op string

// Operations, told apart by method, sub-resource query and whether the
// path names a key.
const (
	OpGet            Op = "get"             // GET of an object, whole or ranged
	OpStat           Op = "stat"            // HEAD of an object
	OpPut            Op = "put"             // single-part PUT of an object
	OpDelete         Op = "delete"          // DELETE of an object
	OpDeleteMulti    Op = "delete-multi"    // POST ?delete on the bucket
	OpList           Op = "list"            // GET ?list-type=2 (or a v1 listing) on the bucket
	OpListUploads    Op = "list-uploads"    // GET ?uploads on the bucket
	OpCreateUpload   Op = "create-upload"   // POST ?uploads on a key
	OpUploadPart     Op = "upload-part"     // PUT ?partNumber&uploadId
	OpCompleteUpload Op = "complete-upload" // POST ?uploadId
	OpAbortUpload    Op = "abort-upload"    // DELETE ?uploadId
	OpListParts      Op = "list-parts"      // GET ?uploadId
	OpBucket         Op = "bucket"          // any other bucket-level request: HEAD, ?location, ?object-lock...
	OpOther          Op = "other"           // object sub-resources: ?retention, ?tagging...
)

// Request is what a rule sees of an S3 request.
type Request struct {
	Op     Op
	Method string
	Bucket string
	Key    string // the object key; "" for bucket-level requests
	Prefix string // a listing's prefix parameter
	Range  string // the Range header of a GET, "" for a whole-object read
}

// Name is what a rule's Key matcher is applied to: the key, or a
// listing's prefix.
func (r Request) Name() string {
	if r.Op == OpList || r.Op == OpListUploads {
		return r.Prefix
	}
	return r.Key
}

// Classify tells which operation an S3 request (path-style, as minio-go
// sends to an IP endpoint) is.
func Classify(r *http.Request) Request {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	q := r.URL.Query()
	req := Request{Method: r.Method, Bucket: bucket, Key: key, Prefix: q.Get("prefix"), Range: r.Header.Get("Range")}
	has := func(k string) bool { _, ok := q[k]; return ok }
	if key == "" {
		switch {
		case r.Method == http.MethodGet && has("uploads"):
			req.Op = OpListUploads
		case r.Method == http.MethodGet && (has("list-type") || len(q) == 0 || has("prefix") || has("delimiter") || has("marker")):
			req.Op = OpList
		case r.Method == http.MethodPost && has("delete"):
			req.Op = OpDeleteMulti
		default:
			req.Op = OpBucket
		}
		return req
	}
	switch r.Method {
	case http.MethodPost:
		switch {
		case has("uploads"):
			req.Op = OpCreateUpload
		case has("uploadId"):
			req.Op = OpCompleteUpload
		default:
			req.Op = OpOther
		}
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId"):
			req.Op = OpUploadPart
		case len(q) == 0:
			req.Op = OpPut
		default:
			req.Op = OpOther
		}
	case http.MethodGet:
		switch {
		case has("uploadId"):
			req.Op = OpListParts
		case len(q) == 0 || onlyGetParams(q):
			req.Op = OpGet
		default:
			req.Op = OpOther
		}
	case http.MethodHead:
		req.Op = OpStat
	case http.MethodDelete:
		if has("uploadId") {
			req.Op = OpAbortUpload
		} else {
			req.Op = OpDelete
		}
	default:
		req.Op = OpOther
	}
	return req
}

// onlyGetParams: a plain object GET may carry a version or response
// overrides; those are still reads of the object.
func onlyGetParams(q map[string][]string) bool {
	for k := range q {
		if k != "versionId" && !strings.HasPrefix(k, "response-") && k != "partNumber" {
			return false
		}
	}
	return true
}

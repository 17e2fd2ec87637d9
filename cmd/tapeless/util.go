package main

import (
	"bytes"
	"encoding"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// defaultConfigPath is $TAPELESS_CONFIG, else the user config directory.
func defaultConfigPath() string {
	if p := os.Getenv("TAPELESS_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "tapeless.yaml"
	}
	return filepath.Join(dir, "tapeless", "config.yaml")
}

// writeJSON prints v as indented JSON followed by a newline, after making
// it follow docs/JSON.md: lists and maps never null, times in UTC.
func writeJSON(w io.Writer, v any) error {
	rv := reflect.New(reflect.TypeOf(v)).Elem()
	rv.Set(reflect.ValueOf(v))
	normalizeJSON(rv)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(rv.Interface())
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// normalizeJSON walks v as encoding/json would and sets every nil slice or
// map it can to an empty one, so that it prints as [] or {} rather than
// null, and every time to UTC. It changes what v points to: call it on
// results just before they are printed.
func normalizeJSON(v reflect.Value) {
	if v.Type() == timeType {
		if v.CanSet() {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC()))
		}
		return
	}
	// A type that encodes itself is left to do so.
	if v.Type().Implements(marshalerType) || reflect.PointerTo(v.Type()).Implements(marshalerType) ||
		v.Type().Implements(textMarshalerType) || reflect.PointerTo(v.Type()).Implements(textMarshalerType) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			normalizeJSON(v.Elem())
		}
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		c := reflect.New(v.Elem().Type()).Elem()
		c.Set(v.Elem())
		normalizeJSON(c)
		v.Set(c)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); (f.IsExported() || f.Anonymous) && f.Tag.Get("json") != "-" {
				normalizeJSON(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		for i := range v.Len() {
			normalizeJSON(v.Index(i))
		}
	case reflect.Array:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := range v.Len() {
				normalizeJSON(v.Index(i))
			}
		}
	case reflect.Map:
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			normalizeJSON(e)
			v.SetMapIndex(k, e)
		}
	}
}

// isCobraUsage reports errors cobra raises for bad invocations (unknown
// command, wrong argument count), which exit with the usage code.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "invalid argument"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// jsonStdout is stdout as the commands see it. Under --json it keeps what
// they print, so that run can add the error object to it (finishJSON);
// otherwise it writes through at once.
type jsonStdout struct {
	g   *globalOptions
	w   io.Writer
	buf bytes.Buffer
}

func (o *jsonStdout) Write(p []byte) (int, error) {
	if o.g.json {
		return o.buf.Write(p)
	}
	return o.w.Write(p)
}

// jsonRequested reports whether args ask for --json, for errors raised
// before the flag was parsed (an unknown flag in front of it).
func jsonRequested(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--json":
			return true
		case strings.HasPrefix(a, "--json="):
			v, err := strconv.ParseBool(strings.TrimPrefix(a, "--json="))
			return err == nil && v
		}
	}
	return false
}

// jsonError is the error object of docs/JSON.md.
type jsonError struct {
	Code    int    `json:"code"`    // the exit code
	Message string `json:"message"` // what went wrong, as on stderr
}

// finishJSON writes a command's --json output, doc, to w. On success that
// is doc as printed. On failure (code != 0) the error goes in: as
// {"error": {...}} when the command printed nothing, or as the "error"
// member added to the object it printed, so that w always gets exactly one
// JSON object and a script finds the error at .error either way.
func finishJSON(w io.Writer, doc []byte, code int, err error) error {
	if code == exitOK || err == nil {
		_, werr := w.Write(doc)
		return werr
	}
	var eb bytes.Buffer
	enc := json.NewEncoder(&eb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]jsonError{"error": {Code: code, Message: err.Error()}}); err != nil {
		return err
	}
	e := bytes.TrimSpace(eb.Bytes())
	var compact bytes.Buffer
	switch {
	case len(bytes.TrimSpace(doc)) == 0:
		compact.Write(e)
	case json.Compact(&compact, doc) == nil && bytes.HasPrefix(compact.Bytes(), []byte("{")):
		body := bytes.Clone(bytes.TrimSuffix(compact.Bytes(), []byte("}")))
		compact.Reset()
		compact.Write(body)
		if len(body) > 1 {
			compact.WriteByte(',')
		}
		compact.Write(e[1:]) // `"error":{…}}`
	default:
		// Not a JSON object (help text): leave it as it is.
		_, werr := w.Write(doc)
		return werr
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, werr := w.Write(out.Bytes())
	return werr
}

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/tapeless/tapeless/archive"
)

func TestResolvePoint(t *testing.T) {
	mk := func(s string) archive.PointHeader {
		id, err := archive.ParseID(s + strings.Repeat("0", 64-len(s)))
		if err != nil {
			t.Fatal(err)
		}
		return archive.PointHeader{ID: id}
	}
	ps := []archive.PointHeader{mk("ab12"), mk("ab34"), mk("cd")}
	cases := []struct {
		prefix  string
		want    string // ID prefix of the match; "" for an error
		usage   bool   // the error is a usage error
		noPoint bool   // the error wraps errNoPoint
	}{
		{"ab1", "ab12", false, false},
		{"AB34", "ab34", false, false},
		{" cd ", "cd", false, false},
		{"ab", "", true, false},
		{"ef", "", false, true},
		{"", "", true, true},
	}
	for _, c := range cases {
		p, err := resolvePoint(ps, c.prefix)
		if c.want != "" {
			if err != nil || !strings.HasPrefix(p.ID.String(), c.want) {
				t.Errorf("resolvePoint(%q) = %s, %v; want %s…", c.prefix, p.ID, err, c.want)
			}
			continue
		}
		var ue usageError
		if err == nil || errors.As(err, &ue) != c.usage || errors.Is(err, errNoPoint) != c.noPoint {
			t.Errorf("resolvePoint(%q) error = %v; want usage=%v noPoint=%v", c.prefix, err, c.usage, c.noPoint)
		}
	}
}

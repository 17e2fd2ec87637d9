package main

import (
	"errors"
	"strings"
	"testing"
	"time"

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

func TestResolveLatest(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, time.UTC) }
	id := func(b byte) archive.ID { var i archive.ID; i[0] = b; return i }
	ps := []archive.PointHeader{
		{ID: id(1), Source: "home", Time: at(1)},
		{ID: id(2), Source: "etc", Time: at(3)},
		{ID: id(3), Source: "home", Time: at(2)},
		{ID: id(4), Source: "etc", Time: at(3)}, // same time as 2: the larger ID wins
	}
	for arg, want := range map[string]archive.ID{"latest": id(4), "latest:home": id(3), " latest:etc ": id(4)} {
		p, err := resolvePoint(ps, arg)
		if err != nil || p.ID != want {
			t.Errorf("resolvePoint(%q) = %s, %v; want %s", arg, p.ID, err, want)
		}
	}
	if _, err := resolvePoint(ps, "latest:www"); !errors.Is(err, errNoPoint) || !strings.Contains(err.Error(), `"www"`) {
		t.Errorf("latest of an unknown source: %v", err)
	}
	if _, err := resolvePoint(nil, "latest"); !errors.Is(err, errNoPoint) {
		t.Errorf("latest of no points: %v", err)
	}
	if p, err := resolvePoint(ps, "02"); err != nil || p.ID != id(2) {
		t.Errorf("an ID prefix still works: %s %v", p.ID, err)
	}
}

package archive

import "testing"

func TestTestPointArming(t *testing.T) {
	for _, c := range []struct {
		name   string
		syntax string
		value  string
		armed  bool
		point  string
		at     int64
		arg    string
	}{
		{name: "crash default N", syntax: "NAME:N", value: "offload-gc-pack", armed: true, point: "offload-gc-pack", at: 1},
		{name: "crash empty N", syntax: "NAME:N", value: "x:", armed: true, point: "x", at: 1},
		{name: "crash N", syntax: "NAME:N", value: "x:3", armed: true, point: "x", at: 3},
		{name: "crash bad N", syntax: "NAME:N", value: "x:0"},
		{name: "crash extra field", syntax: "NAME:N", value: "x:2:d"},
		{name: "pause", syntax: "NAME:N:DIR", value: "restore-write:2:/tmp/a:b", armed: true, point: "restore-write", at: 2, arg: "/tmp/a:b"},
		{name: "pause without dir", syntax: "NAME:N:DIR", value: "restore-write:2"},
		{name: "pause without N", syntax: "NAME:N:DIR", value: "restore-write::/tmp"},
		{name: "unset", syntax: "NAME:N", value: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &testPoint{env: "TAPELESS_TEST_POINT", syntax: c.syntax}
			p.withArg, p.nOptional = c.syntax == "NAME:N:DIR", c.syntax == "NAME:N"
			t.Setenv(p.env, c.value)
			p.arm()
			if got := p.armed.Load(); got != c.armed {
				t.Fatalf("armed = %v, want %v", got, c.armed)
			}
			if c.armed && (p.name != c.point || p.at != c.at || p.arg != c.arg) {
				t.Errorf("armed %q at %d arg %q, want %q at %d arg %q", p.name, p.at, p.arg, c.point, c.at, c.arg)
			}
		})
	}
}

func TestTestPointHit(t *testing.T) {
	t.Setenv("TAPELESS_TEST_POINT", "b:2")
	p := &testPoint{env: "TAPELESS_TEST_POINT", syntax: "NAME:N", nOptional: true}
	var got []bool
	for _, name := range []string{"a", "b", "a", "b", "b"} {
		got = append(got, p.hit(name))
	}
	want := []bool{false, false, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hits %v, want %v (only the second reach of b)", got, want)
		}
	}
}

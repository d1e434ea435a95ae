package intern

import (
	"strings"
	"testing"
	"unsafe"
)

func TestTable(t *testing.T) {
	tb := New()
	if tb.ID("") != 0 || tb.Name(0) != "" {
		t.Fatal(`"" is not 0`)
	}
	rec := []byte("DE-quest-7")
	s := unsafe.String(&rec[0], 2) // "DE", sharing rec
	a := tb.ID(s)
	if a == 0 || tb.ID("DE") != a || tb.Name(a) != "DE" {
		t.Fatalf("DE: %d, again %d, named %q", a, tb.ID("DE"), tb.Name(a))
	}
	if unsafe.StringData(tb.Name(a)) == &rec[0] {
		t.Fatal("the table kept the caller's bytes, not a copy")
	}
	if b := tb.ID(strings.Repeat("q", 3)); b == a || tb.Name(b) != "qqq" {
		t.Fatalf("qqq: %d (DE is %d), named %q", b, a, tb.Name(b))
	}
}

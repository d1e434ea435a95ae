package arena

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNamesAgainstStrings: names added, freed and compacted read back as
// the strings they were, views taken before a compaction stay unchanged,
// and the chunks shrink once most names are freed.
func TestNamesAgainstStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a Names
	type rec struct {
		ref  Ref
		want string
		view string
	}
	var recs []rec
	for step := range 200_000 {
		name := fmt.Sprintf("u%d", r.IntN(1_000_000))
		if step%10_000 == 7 {
			name = strings.Repeat("x", chunkSize+r.IntN(100)) // a chunk of its own
		}
		if step%1000 == 3 {
			name = ""
		}
		ref := a.Add(name)
		recs = append(recs, rec{ref, name, a.View(ref)})
		if step%5_000 == 4_999 {
			// Free most, keep a few.
			kept := recs[:0]
			for _, x := range recs {
				if r.IntN(10) == 0 {
					kept = append(kept, x)
				} else {
					a.Free(x.ref)
				}
			}
			recs = kept
			a.Compact(func(move func(Ref) Ref) {
				for i := range recs {
					recs[i].ref = move(recs[i].ref)
				}
			})
		}
		if step%997 == 0 {
			for _, x := range recs {
				if got := a.View(x.ref); got != x.want || x.view != x.want || !a.Equal(x.ref, x.want) || x.ref.Len() != len(x.want) {
					t.Fatalf("step %d: %q (view %q), want %q", step, got, x.view, x.want)
				}
				if a.Equal(x.ref, x.want+"!") {
					t.Fatalf("step %d: %q equal to %q", step, x.want, x.want+"!")
				}
			}
		}
	}
	live := 0
	for _, x := range recs {
		live += len(x.want)
	}
	if a.Bytes() > 4*live+4*chunkSize {
		t.Fatalf("%d bytes in chunks for %d live", a.Bytes(), live)
	}
}

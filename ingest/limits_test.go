package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"testing"
)

// TestReadBodyBuffersBounded: a gzip bomb is refused with its decoded
// buffer no larger than the limit (+ the allocator's rounding), and each
// growth is asked of the budget (bytes.Buffer doubled past the limit: a
// 16 MiB buffer for the 8 MiB limit, helper-37).
func TestReadBodyBuffersBounded(t *testing.T) {
	const maxBody, maxDecoded = 1 << 20, 8 << 20
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(make([]byte, maxDecoded+maxDecoded/2))
	zw.Close()
	var raw, dec []byte
	asked := 0
	_, _, err := readBody(bytes.NewReader(z.Bytes()), true, maxBody, maxDecoded, &raw, &dec, func(n int) bool { asked += n; return true })
	if !errors.Is(err, errTooLarge) {
		t.Fatalf("err %v, want errTooLarge", err)
	}
	if c := cap(dec); c > maxDecoded+64<<10 {
		t.Fatalf("decoded buffer of %d bytes for a limit of %d", c, maxDecoded)
	}
	if asked != cap(raw)+cap(dec) || asked > maxBody+maxDecoded+2 {
		t.Fatalf("asked the budget for %d bytes, the buffers hold %d", asked, cap(raw)+cap(dec))
	}
	// Refused by the budget: errBusy, before the buffer grows further.
	raw, dec, asked = nil, nil, 0
	_, _, err = readBody(bytes.NewReader(z.Bytes()), true, maxBody, maxDecoded, &raw, &dec, func(n int) bool { asked += n; return asked < 2<<20 })
	if !errors.Is(err, errBusy) || cap(raw)+cap(dec) > 4<<20 {
		t.Fatalf("err %v, want errBusy; buffers of %d bytes", err, cap(raw)+cap(dec))
	}
}

package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Body failures of readBody; the handler maps them to statuses.
var (
	errTooLarge        = errors.New("body: larger than the limit")
	errBadGzip         = errors.New("body: invalid gzip data")
	errBadEncoding     = errors.New("unsupported Content-Encoding (want gzip or none)")
	errBadContentType  = errors.New("unsupported Content-Type (want application/json)")
	errReadBodyTimeout = errors.New("body: read timed out")
	errBusy            = errors.New("ingest holds as many request bytes as it may (MaxBufferBytes); retry later")
)

// checkHeaders refuses, before reading anything, a body ingest cannot
// take: a wrong media type or encoding (415), or a declared length over
// the limit (413). It reports whether the body is gzip.
func checkHeaders(r *http.Request, maxBody int64) (gz bool, err error) {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	if !strings.EqualFold(strings.TrimSpace(ct), "application/json") {
		return false, errBadContentType
	}
	switch enc := strings.TrimSpace(r.Header.Get("Content-Encoding")); {
	case enc == "" || strings.EqualFold(enc, "identity"):
	case strings.EqualFold(enc, "gzip"):
		gz = true
	default:
		return false, errBadEncoding
	}
	if r.ContentLength > maxBody {
		return gz, errTooLarge
	}
	return gz, nil
}

var gzipReaders sync.Pool // *gzip.Reader, reused: each holds ~40 KB of tables

// readBody reads r's body into raw (at most maxBody bytes as sent) and,
// for gzip, decodes it into dec (at most maxDecoded bytes). It returns the
// JSON bytes and the bytes as sent. Decoding stops one byte past the
// limit, so a gzip bomb is refused without inflating it, and neither
// buffer grows past its limit + 1 (bytes.Buffer doubled them: a 16 MiB
// buffer for the 8 MiB limit, helper-37).
func readBody(body io.Reader, gz bool, maxBody, maxDecoded int64, raw, dec *[]byte, grow func(n int) bool) (json, sent []byte, err error) {
	*raw, err = readAtMost((*raw)[:0], body, int(maxBody), grow)
	sent = *raw
	if err != nil {
		if isTimeout(err) {
			return nil, sent, errReadBodyTimeout
		}
		return nil, sent, err // errBusy too
	}
	if int64(len(sent)) > maxBody {
		return nil, sent, errTooLarge
	}
	if !gz {
		return sent, sent, nil
	}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader)
	}
	defer gzipReaders.Put(zr)
	if err := zr.Reset(bytes.NewReader(sent)); err != nil {
		return nil, sent, errBadGzip
	}
	*dec, err = readAtMost((*dec)[:0], zr, int(maxDecoded), grow)
	if errors.Is(err, errBusy) {
		return nil, sent, err
	}
	if err != nil {
		return nil, sent, errBadGzip
	}
	if int64(len(*dec)) > maxDecoded {
		return nil, sent, errTooLarge
	}
	return *dec, sent, nil
}

// readAtMost appends r's bytes to dst until EOF or limit+1 bytes, growing
// dst by doubling but never past limit+1 (and 4 KiB at first). grow must
// allow each growth before it is made (n bytes: the capacity asked for
// less the capacity there was), else errBusy; so a buffer is charged
// limit+1 at most in all, whatever the allocator rounds up to.
func readAtMost(dst []byte, r io.Reader, limit int, grow func(n int) bool) ([]byte, error) {
	for len(dst) <= limit {
		if len(dst) == cap(dst) {
			want := min(max(2*cap(dst), 4096), limit+1)
			if !grow(want - cap(dst)) {
				return dst, errBusy
			}
			dst = append(make([]byte, 0, want), dst...)
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit+1)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

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
// limit, so a gzip bomb is refused without inflating it.
func readBody(body io.Reader, gz bool, maxBody, maxDecoded int64, raw, dec *bytes.Buffer) (json, sent []byte, err error) {
	if _, err := raw.ReadFrom(io.LimitReader(body, maxBody+1)); err != nil {
		if isTimeout(err) {
			return nil, raw.Bytes(), errReadBodyTimeout
		}
		return nil, raw.Bytes(), err
	}
	sent = raw.Bytes()
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
	if _, err := dec.ReadFrom(io.LimitReader(zr, maxDecoded+1)); err != nil {
		return nil, sent, errBadGzip
	}
	if int64(dec.Len()) > maxDecoded {
		return nil, sent, errTooLarge
	}
	return dec.Bytes(), sent, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

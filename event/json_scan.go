package event

// The JSON scanner under ParseBatch: whitespace, objects, strings (with
// escapes and UTF-8 checks), integers, numbers and skipping of values
// the batch does not read. json_decode.go reads the batch and its events
// with it.

import (
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds the nesting of unknown props, so a hostile body cannot
// exhaust the stack.
const maxDepth = 64

type parser struct {
	s   string
	i   int
	err error // first whole-body error; parsing stops once set
}

func (p *parser) fail(msg string) {
	if p.err == nil {
		p.err = &SyntaxError{Offset: p.i, Msg: msg}
	}
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and the byte c, or fails.
func (p *parser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	if p.i >= len(p.s) {
		p.fail("unexpected end of input, expected '" + string(c) + "'")
	} else {
		p.fail("expected '" + string(c) + "'")
	}
	return false
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// objectNext is the loop step of an object: after '{' (first=true) or
// after a member. It returns the next key, or ok=false at '}' or error.
func (p *parser) objectNext(first bool) (key string, ok bool) {
	c := p.peek()
	if first {
		if c == '}' {
			p.i++
			return "", false
		}
	} else {
		switch c {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return "", false
		default:
			p.fail("expected ',' or '}' in object")
			return "", false
		}
	}
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		p.fail("expected a string key")
		return "", false
	}
	key, ok = p.str()
	if !ok || !p.consume(':') {
		return "", false
	}
	p.ws()
	return key, true
}

// strValue reads a JSON string at p.i; if the value is not a string it
// skips it and returns ok=false.
func (p *parser) strValue() (string, bool) {
	if p.i < len(p.s) && p.s[p.i] == '"' {
		return p.str()
	}
	p.skip(0)
	return "", false
}

// integer reads a JSON number at p.i that must be an integer within int64.
// A non-number is skipped; msg says what was wrong ("" when fine).
func (p *parser) integer() (int64, string) {
	if p.i >= len(p.s) || (p.s[p.i] != '-' && (p.s[p.i] < '0' || p.s[p.i] > '9')) {
		p.skip(0)
		if p.err != nil {
			return 0, ""
		}
		return 0, "must be an integer"
	}
	start := p.i
	p.number()
	if p.err != nil {
		return 0, ""
	}
	lit := p.s[start:p.i]
	neg := lit[0] == '-'
	digits := lit
	if neg {
		digits = lit[1:]
	}
	var v uint64
	for j := 0; j < len(digits); j++ {
		c := digits[j]
		if c < '0' || c > '9' {
			return 0, "must be an integer (no fraction or exponent)"
		}
		if v > (1<<63)/10 {
			return 0, "out of the int64 range"
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, "out of the int64 range"
		}
		return -int64(v), ""
	}
	if v > 1<<63-1 {
		return 0, "out of the int64 range"
	}
	return int64(v), ""
}

// number scans a JSON number at p.i (RFC 8259 grammar).
func (p *parser) number() {
	s, i := p.s, p.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		p.i = i
		p.fail("invalid number")
		return
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.i = i
			p.fail("invalid number")
			return
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.i = i
			p.fail("invalid number")
			return
		}
	}
	p.i = i
}

// skip scans any JSON value at p.i (after whitespace), checking its syntax.
func (p *parser) skip(depth int) {
	if depth > maxDepth {
		p.fail("nesting deeper than " + strconv.Itoa(maxDepth))
		return
	}
	switch c := p.peek(); c {
	case '"':
		p.str()
	case '{':
		p.i++
		for first := true; ; first = false {
			_, ok := p.objectNext(first)
			if !ok {
				return
			}
			p.skip(depth + 1)
			if p.err != nil {
				return
			}
		}
	case '[':
		p.i++
		if p.peek() == ']' {
			p.i++
			return
		}
		for {
			p.skip(depth + 1)
			if p.err != nil {
				return
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return
			default:
				p.fail("expected ',' or ']' in array")
				return
			}
		}
	case 't':
		p.literal("true")
	case 'f':
		p.literal("false")
	case 'n':
		p.literal("null")
	case 0:
		p.fail("unexpected end of input")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			p.number()
			return
		}
		p.fail("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

func (p *parser) literal(lit string) {
	if len(p.s)-p.i >= len(lit) && p.s[p.i:p.i+len(lit)] == lit {
		p.i += len(lit)
		return
	}
	p.fail("invalid literal")
}

// str reads the JSON string at p.i (which is '"'). Without escapes the
// result is a substring of the body; with them it is a new string.
func (p *parser) str() (string, bool) {
	s := p.s
	start := p.i + 1
	// Fast path: printable ASCII up to the closing quote, one table
	// lookup per byte (keys and ids are short: a vectorised search for the
	// quote costs more than it saves).
	i := start
	for i < len(s) && plainByte[s[i]] {
		i++
	}
	if i < len(s) && s[i] == '"' {
		p.i = i + 1
		return s[start:i], true
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return s[start:i], true
		case c == '\\':
			return p.strEscaped(start, i)
		case c < 0x20:
			p.i = i
			p.fail("control character in string")
			return "", false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				p.i = i
				p.fail("invalid UTF-8 in string")
				return "", false
			}
			i += n
		}
	}
	p.i = len(s)
	p.fail("unterminated string")
	return "", false
}

// strEscaped continues str from the first backslash at i.
func (p *parser) strEscaped(start, i int) (string, bool) {
	s := p.s
	buf := make([]byte, 0, i-start+16)
	buf = append(buf, s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return string(buf), true
		case c == '\\':
			if i+1 >= len(s) {
				p.i = i
				p.fail("unterminated string")
				return "", false
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(s, i+2)
				if !ok {
					p.i = i
					p.fail(`invalid \u escape`)
					return "", false
				}
				i += 6
				if utf16Surrogate(r) {
					// A high surrogate followed by an escaped low one is one
					// rune; a lone surrogate becomes U+FFFD, as in encoding/json.
					if r < 0xdc00 && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2, ok := hex4(s, i+2); ok && r2 >= 0xdc00 && r2 < 0xe000 {
							buf = utf8.AppendRune(buf, (r-0xd800)<<10|(r2-0xdc00)+0x10000)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default:
				p.i = i
				p.fail("invalid escape in string")
				return "", false
			}
			i += 2
		case c < 0x20:
			p.i = i
			p.fail("control character in string")
			return "", false
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				p.i = i
				p.fail("invalid UTF-8 in string")
				return "", false
			}
			buf = append(buf, s[i:i+n]...)
			i += n
		}
	}
	p.i = len(s)
	p.fail("unterminated string")
	return "", false
}

// plainByte marks the bytes a string's fast path passes over: printable
// ASCII except '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func utf16Surrogate(r rune) bool { return r >= 0xd800 && r < 0xe000 }

func hex4(s string, i int) (rune, bool) {
	if len(s)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

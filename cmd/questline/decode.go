package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/questline/questline/event"
)

// runDecode reads Kafka record values framed by kcat -f '%R%s' (a 4-byte
// big-endian length, then the value) from stdin and prints one JSON line
// per record: event.AppendJSON for questline.events records, the JSON
// itself for questline.events.dlq records and for the processors'
// watermark records in questline.events ({"questline_watermark":…}, see
// kafka.WatermarkHeader). For example:
//
//	kcat -C -b 127.0.0.1:9092 -t questline.events -e -q -f '%R%s' | questline decode
func runDecode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("questline decode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, "usage: kcat -C -b <broker> -t questline.events -e -q -f '%R%s' | questline decode\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: decode reads stdin and takes no arguments", errUsage)
	}
	return decodeFrames(os.Stdin, stdout)
}

// maxFrame bounds one record value (Kafka's default max.message.bytes is
// 1 MiB; this leaves room for raised limits without trusting any length).
const maxFrame = 64 << 20

func decodeFrames(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	var (
		hdr [4]byte
		val []byte
		out []byte
		e   event.Event
	)
	for n := 0; ; n++ {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				return bw.Flush()
			}
			bw.Flush()
			return fmt.Errorf("record %d: truncated length prefix (is the kcat format '%%R%%s'?)", n)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > maxFrame {
			bw.Flush()
			return fmt.Errorf("record %d: length %d is implausible (is the kcat format '%%R%%s'?)", n, size)
		}
		if cap(val) < int(size) {
			val = make([]byte, size)
		}
		val = val[:size]
		if _, err := io.ReadFull(br, val); err != nil {
			bw.Flush()
			return fmt.Errorf("record %d: truncated value: %v", n, err)
		}
		out = out[:0]
		switch err := event.DecodeBinary(val, &e); {
		case err == nil:
			out = event.AppendJSON(out, &e)
		case len(val) > 0 && val[0] == '{':
			out = append(out, val...) // a dead letter: already JSON
		default:
			bw.Flush()
			return fmt.Errorf("record %d: %v", n, err)
		}
		out = append(out, '\n')
		if _, err := bw.Write(out); err != nil {
			return err
		}
	}
}

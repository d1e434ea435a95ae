package processors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
)

// logRecord is a record the clean pass may read again: its offset and its
// value (a slice of a Fetch response, or of a batch decompressed).
type logRecord struct {
	offset int64
	value  []byte
}

// Offsets in a record batch of message format 2 (Kafka 0.11 and later).
const (
	batchMagic      = 16 // int8
	batchCRC        = 17 // uint32: CRC-32C of the rest, from the attributes
	batchAttributes = 21 // int16: codec in bits 0–2, control batch bit 5
	batchLastDelta  = 23 // int32
	batchCount      = 57 // int32
	batchRecords    = 61
)

// appendBatchRecords appends to recs the offset and value of every data
// record at or after from in b, the record batches of one partition of a
// Fetch response, decompressing them with d and checking each batch's
// CRC. A partial batch at the end (a broker may cut a response there) is
// left out; control batches (transaction markers) hold no data record; a
// record of an aborted transaction is read, as the stage's consumer reads
// it (read uncommitted). end is the offset after the last complete batch
// read (control batches too), or from when none is: where the next read
// starts.
//
// It is what kgo.ProcessFetchPartition does for these batches, less what
// the clean pass does not need (a kgo.Record per record, keys, headers,
// timestamps: most of the reader's CPU and allocation in
// BenchmarkLogReader); TestBatchRecordsAsKgo holds it to kgo's.
func appendBatchRecords(recs []logRecord, b []byte, from int64, d kgo.Decompressor) (_ []logRecord, end int64, err error) {
	end = from
	for len(b) >= 12 {
		base := int64(binary.BigEndian.Uint64(b))
		n := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if 12+n > int64(len(b)) {
			break // a partial batch
		}
		if n < batchRecords-12 {
			return recs, end, fmt.Errorf("a record batch of %d bytes at offset %d", n, base)
		}
		batch := b[:12+n]
		b = b[12+n:]
		if magic := batch[batchMagic]; magic != 2 {
			return recs, end, fmt.Errorf("a record batch of message format %d at offset %d (the clean pass reads format 2: Kafka 0.11 and later)", magic, base)
		}
		if crc32.Checksum(batch[batchAttributes:], castagnoli) != binary.BigEndian.Uint32(batch[batchCRC:]) {
			return recs, end, fmt.Errorf("the record batch at offset %d fails its CRC", base)
		}
		attrs := binary.BigEndian.Uint16(batch[batchAttributes:])
		last := base + int64(int32(binary.BigEndian.Uint32(batch[batchLastDelta:])))
		end = max(end, last+1)
		if attrs&0x20 != 0 || last < from {
			continue // a transaction marker, or all before from
		}
		count := int32(binary.BigEndian.Uint32(batch[batchCount:]))
		data := batch[batchRecords:]
		if codec := kgo.CompressionCodecType(attrs & 7); codec != kgo.CodecNone {
			if data, err = d.Decompress(data, codec); err != nil {
				return recs, end, fmt.Errorf("the record batch at offset %d: %w", base, err)
			}
		}
		for range count {
			delta, value, rest, err := readRecord(data)
			if err != nil {
				return recs, end, fmt.Errorf("the record batch at offset %d: %w", base, err)
			}
			data = rest
			if off := base + delta; off >= from {
				recs = append(recs, logRecord{offset: off, value: value})
			}
		}
	}
	return recs, end, nil
}

var errRecord = errors.New("a record past its batch's end")

// readRecord reads one record of a batch from b: its offset delta and its
// value (nil for a null value), and the bytes after it. Integers are
// zigzag varints, as binary.Varint reads them.
func readRecord(b []byte) (delta int64, value, rest []byte, err error) {
	length, k := binary.Varint(b)
	if k <= 0 || length < 1 || length > int64(len(b)-k) {
		return 0, nil, nil, errRecord
	}
	rec, rest := b[k:k+int(length)], b[k+int(length):]
	rec = rec[1:] // attributes
	var v [4]int64
	for i := range v { // timestamp delta, offset delta, key length, (key) value length
		if v[i], k = binary.Varint(rec); k <= 0 {
			return 0, nil, nil, errRecord
		}
		rec = rec[k:]
		if i == 2 && v[i] > 0 { // the key
			if v[i] > int64(len(rec)) {
				return 0, nil, nil, errRecord
			}
			rec = rec[v[i]:]
		}
	}
	if n := v[3]; n >= 0 {
		if n > int64(len(rec)) {
			return 0, nil, nil, errRecord
		}
		value = rec[:n:n]
	}
	return v[1], value, rest, nil
}

package pipeline

import (
	"encoding/binary"
	"fmt"
)

// Device flags: the device stage's answer to the events a partition
// forwarded (Output.Devices). For every device window it closes with the
// device flagged, it sends each user of the device in that window a flag
// record, to the partition of questline.events that holds the user's
// events; then, to every partition, a marker with its watermark: every
// device window closed at or before it has had its flags sent. The clean
// pass leaves flagged users out as it does users the partition's own bot
// processor flagged, and takes an event only when every device partition's
// marker has passed the event's need as well as the watermark: by then
// every flag that can touch it is applied, and no later one can (a flag
// is final when sent, and sets are idempotent), so the clean rows stay a
// function of the records, whatever the interleaving of the two logs.
//
// Record values (the flags topic of processors):
//
//	flag:   1, the window start (8 bytes, Unix ms), the user id
//	marker: 2, the device partition (4 bytes), its watermark (8 bytes)
const (
	deviceFlag   byte = 1
	deviceMarker byte = 2
)

// DeviceFlagValue returns the record of a flag: user is flagged in the bot
// window starting at start through a device.
func DeviceFlagValue(user string, start int64) []byte {
	b := make([]byte, 0, 9+len(user))
	b = append(b, deviceFlag)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	return append(b, user...)
}

// DeviceMarkerValue returns the record of device partition's marker: its
// flags of every device window closed at watermark wm are sent.
func DeviceMarkerValue(partition int32, wm int64) []byte {
	b := make([]byte, 0, 13)
	b = append(b, deviceMarker)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	return binary.BigEndian.AppendUint64(b, uint64(wm))
}

// AddDeviceFlags applies v, the record at offset of the partition's flags
// log (DeviceFlagValue, DeviceMarkerValue), and runs the clean pass as far
// as it now may. Records below DeviceFlagsNext are passed over. An error
// is a record it cannot read (not written by the device stage), which
// changes nothing but the offset; the clean pass's own error is Err's.
func (p *Partition) AddDeviceFlags(offset int64, v []byte) error {
	if offset < p.flagsNext {
		return nil
	}
	p.flagsNext = offset + 1
	switch {
	case len(v) >= 9 && v[0] == deviceFlag:
		p.flags.SetDevice(string(v[9:]), int64(binary.BigEndian.Uint64(v[1:9])))
	case len(v) == 13 && v[0] == deviceMarker:
		d := int(binary.BigEndian.Uint32(v[1:5]))
		if d >= len(p.devMarks) {
			return fmt.Errorf("pipeline: device flags at offset %d: a marker of device partition %d, of %d", offset, d, len(p.devMarks))
		}
		if wm := int64(binary.BigEndian.Uint64(v[5:13])); wm > p.devMarks[d] {
			p.devMarks[d] = wm
			if p.clean != nil {
				p.releaseClean()
			}
		}
	default:
		return fmt.Errorf("pipeline: device flags at offset %d: an unknown record of %d bytes", offset, len(v))
	}
	return nil
}

// StartDeviceFlagsAt moves a partition that has read fewer records of the
// flags log than offset to it: the log's first offset, for a partition
// that has read none, where retention has removed the records before.
func (p *Partition) StartDeviceFlagsAt(offset int64) {
	p.flagsNext = max(p.flagsNext, offset)
}

// DeviceFlagsNext returns the offset of the flags log to read next (0 for
// a new partition; a restored one's is in its snapshot).
func (p *Partition) DeviceFlagsNext() int64 { return p.flagsNext }

// cleanLimit is the watermark the clean pass may go by: the partition's,
// and with device flags (Config.DevicePartitions) at most every device
// partition's marker (window.None until each has sent one).
func (p *Partition) cleanLimit() int64 {
	wm := p.wm.Time()
	for _, m := range p.devMarks {
		wm = min(wm, m)
	}
	return wm
}

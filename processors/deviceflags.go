package processors

import "github.com/twmb/franz-go/pkg/kadm"

// maxFlagFetches bounds the Fetch requests readFlags makes for one
// partition in one call (1 MiB each): the rest waits for the next flush.
const maxFlagFetches = 8

// readFlags applies to every owned partition of questline.events the
// records of its partition of TopicDeviceFlags written since it last
// looked (the device stage's flags and markers, pipeline.AddDeviceFlags),
// which lets the clean pass go on. A retriable fetch error is logged and
// left to the next flush: the clean pass waits meanwhile, which only
// delays clean rows. An error is one that stops the stage: the flags
// log no longer holds the offset the partition's snapshot resumes from,
// or the clean pass could not read its events (pipeline.Partition.Err).
// Called once per flush, with s.mu held.
func (s *source) readFlags() error {
	var starts kadm.ListedOffsets
	for _, partition := range s.sortedParts() {
		pt := s.parts[partition]
		if pt.flags == nil {
			continue
		}
		if pt.p.DeviceFlagsNext() == 0 && !pt.flagsStarted {
			// A partition that has read no flag (built from nothing, or
			// from a snapshot of version 5) reads from the log's start,
			// where retention left it: the flags of the events it will
			// read came after them (helper-51).
			if starts == nil {
				var err error
				if starts, err = kadm.NewClient(s.reads).ListStartOffsets(s.ctx, TopicDeviceFlags); err != nil {
					s.log.Warn("processors: listing the device flags' start offsets; the clean pass waits for them", "err", err)
					return nil
				}
			}
			o, ok := starts.Lookup(TopicDeviceFlags, partition)
			if !ok || o.Err != nil {
				s.log.Warn("processors: the device flags' start offset; the clean pass waits for it", "partition", partition, "err", o.Err)
				continue
			}
			pt.p.StartDeviceFlagsAt(o.Offset)
			pt.flagsStarted = true
		}
		for range maxFlagFetches {
			next := pt.p.DeviceFlagsNext()
			recs, retry, err := pt.flags.fetchOnce(next)
			if err != nil && retry {
				s.log.Warn("processors: reading device flags; the clean pass waits for them", "partition", partition, "offset", next, "err", err)
				pt.flags.known = false // look the leader up again
				break
			}
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				break // nothing new
			}
			for _, r := range recs {
				if err := pt.p.AddDeviceFlags(r.offset, r.value); err != nil {
					s.log.Warn("processors: device flag record skipped", "partition", partition, "offset", r.offset, "err", err)
				}
			}
			if err := pt.p.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

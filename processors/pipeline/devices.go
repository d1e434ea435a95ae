package pipeline

import (
	"github.com/questline/questline/event"
)

// deviceRecord returns the record forwarded to the device stage for e:
// only the fields the device bot signals read (bots.Processor.AddRange
// with Entity device), and for a completion with a duration the quest's
// minimum duration as this partition's catalog has it, since the device
// stage has no catalog of its own. 28 bytes per event of the load
// generator's model against 64 for its whole record before ingest adds
// its fields (docs/processors.md, "Device stage").
func (p *Partition) deviceRecord(e *event.Event) []byte {
	d := event.Event{
		Type: e.Type, UserID: e.UserID, DeviceID: e.DeviceID, Country: e.Country,
		EventTime: e.EventTime, EdgeCountry: e.EdgeCountry,
	}
	if e.Type == event.ClaimRejected {
		d.Reason = e.Reason // claim_burst leaves out sold_out and not_live
	}
	if e.Type == event.QuestCompleted && e.Has&event.HasDurationMs != 0 {
		d.DurationMs, d.MinDurationMs = e.DurationMs, p.cat.MinDurationMs(e.QuestID)
		d.Has = event.HasDurationMs | event.HasMinDurationMs
	}
	return event.AppendBinary(nil, &d)
}

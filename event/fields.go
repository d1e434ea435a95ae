package event

import "unsafe"

// strOffset and intOffset give, by field number (event.proto), 1 + the
// offset in Event of the string and int64 fields (0: another kind of
// field, or an unknown one). They are the one mapping from numbers to
// these fields: decode stores through them (storeStr, storeInt) instead
// of switching on the number, an indirect jump per field that the
// processor mispredicts as the event types alternate. setNum keeps the
// fields that need more than a store. TestFieldTables checks that every
// string and int64 field of Event has exactly one number.
var strOffset, intOffset [61]uintptr

func init() {
	var e Event
	for num, p := range map[int]*string{
		3: &e.ID, 4: &e.UserID, 5: &e.DeviceID, 6: &e.SessionID, 7: &e.Country,
		14: &e.KeyID, 15: &e.EdgeCountry, 20: &e.QuestID, 21: &e.DropID, 22: &e.CreatorID,
		23: &e.ClaimID, 24: &e.Reason, 25: &e.AuctionID, 26: &e.Placement, 27: &e.BidderID,
		28: &e.Outcome, 29: &e.OfferID, 30: &e.OrderID, 31: &e.PayoutID, 32: &e.Currency,
		33: &e.Title, 60: &e.Extra,
	} {
		strOffset[num] = 1 + uintptr(unsafe.Pointer(p)) - uintptr(unsafe.Pointer(&e))
	}
	for num, p := range map[int]*int64{
		8: &e.TS, 9: &e.EventTime, 10: &e.SentAt, 11: &e.ReceivedAt, 12: &e.ClockOffsetMs,
		40: &e.AmountMicros, 41: &e.PriceMicros, 42: &e.FloorMicros, 43: &e.ClearingMicros,
		44: &e.LatencyMs, 45: &e.DurationMs, 46: &e.MinDurationMs, 47: &e.MaxDurationMs,
		48: &e.Inventory, 49: &e.StartsAt, 50: &e.EndsAt,
	} {
		intOffset[num] = 1 + uintptr(unsafe.Pointer(p)) - uintptr(unsafe.Pointer(&e))
	}
}

// storeStr sets the string field numbered num and reports whether there
// is one.
func storeStr(e *Event, num uint64, s string) bool {
	if num >= uint64(len(strOffset)) || strOffset[num] == 0 {
		return false
	}
	*(*string)(unsafe.Add(unsafe.Pointer(e), strOffset[num]-1)) = s
	return true
}

// storeInt sets the int64 field numbered num and reports whether there is
// one.
func storeInt(e *Event, num uint64, v int64) bool {
	if num >= uint64(len(intOffset)) || intOffset[num] == 0 {
		return false
	}
	*(*int64)(unsafe.Add(unsafe.Pointer(e), intOffset[num]-1)) = v
	return true
}

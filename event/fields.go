package event

import "unsafe"

// strOffset and intOffset give, by field number, 1 + the offset in Event of
// the string and int64 fields decode sets (0: another kind of field, or
// an unknown one): decode stores through them instead of switching on the
// number (setStr, setNum), an indirect jump per field that the processor
// mispredicts as the event types alternate. They hold what setStr and
// setNum do (TestFieldTables); setNum keeps the fields that need more than
// a store (the version, the type, the source, the presence bits).
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

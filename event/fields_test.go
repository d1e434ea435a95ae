package event

import (
	"testing"
	"unsafe"
)

// TestFieldTables: a store through strOffset or intOffset sets the field
// setStr or setNum sets, for every field number, and the numbers the
// tables leave out are the ones setStr ignores and setNum handles itself.
func TestFieldTables(t *testing.T) {
	for num := range uint64(len(strOffset) + 4) {
		var viaSwitch, viaTable Event
		var version uint64
		setStr(&viaSwitch, num, "x")
		if num < uint64(len(strOffset)) && strOffset[num] != 0 {
			*(*string)(unsafe.Add(unsafe.Pointer(&viaTable), strOffset[num]-1)) = "x"
		}
		if viaSwitch != viaTable {
			t.Errorf("string field %d: %+v, table %+v", num, viaSwitch, viaTable)
		}
		viaSwitch, viaTable = Event{}, Event{}
		setNum(&viaSwitch, num, 7, &version)
		if num < uint64(len(intOffset)) && intOffset[num] != 0 {
			*(*int64)(unsafe.Add(unsafe.Pointer(&viaTable), intOffset[num]-1)) = 7
		} else {
			setNum(&viaTable, num, 7, &version)
		}
		if viaSwitch != viaTable {
			t.Errorf("numeric field %d: %+v, table %+v", num, viaSwitch, viaTable)
		}
	}
}

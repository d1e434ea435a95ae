package event

import (
	"reflect"
	"testing"
)

// TestFieldTables: every string and int64 field of Event has exactly one
// field number in strOffset or intOffset, and every number points at a
// field of its kind. (Which number: TestBinaryRoundTripEveryField, whose
// sample gives every field its own value, fails on a swap.)
func TestFieldTables(t *testing.T) {
	numbers := map[uintptr][]int{}
	for _, table := range [][61]uintptr{strOffset, intOffset} {
		for num, off := range table {
			if off != 0 {
				numbers[off-1] = append(numbers[off-1], num)
			}
		}
	}
	rt := reflect.TypeFor[Event]()
	fields := 0
	for i := range rt.NumField() {
		f := rt.Field(i)
		var table [61]uintptr
		switch f.Type.Kind() {
		case reflect.String:
			table = strOffset
		case reflect.Int64:
			table = intOffset
		default:
			continue
		}
		fields++
		nums := numbers[f.Offset]
		if len(nums) != 1 {
			t.Errorf("%s has field numbers %v, want exactly one", f.Name, nums)
			continue
		}
		if table[nums[0]] != f.Offset+1 {
			t.Errorf("%s's number %d is in the other kind's table", f.Name, nums[0])
		}
	}
	if fields != len(numbers) {
		t.Errorf("the tables point at %d offsets, Event has %d string and int64 fields", len(numbers), fields)
	}
}

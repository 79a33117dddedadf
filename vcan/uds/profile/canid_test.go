package profile

import (
	"reflect"
	"testing"
)

func TestAddressingIDs(t *testing.T) {
	tests := []struct {
		name string
		a    Addressing
		want CANIDs
	}{
		{"normal 11-bit", Addressing{Mode: Normal, IDBits: 11, PhysicalRequest: 0x7E0, PhysicalResponse: 0x7E8, FunctionalRequest: 0x7DF, HasFunctional: true},
			CANIDs{Request: 0x7E0, Response: 0x7E8, Functional: 0x7DF, HasFunctional: true}},
		{"normal 29-bit, no functional", Addressing{Mode: Normal, IDBits: 29, PhysicalRequest: 0x18000010, PhysicalResponse: 0x18000018},
			CANIDs{Request: 0x18000010, Response: 0x18000018, Extended: true}},
		{"normal-fixed", Addressing{Mode: NormalFixed, IDBits: 29, TesterAddress: 0xF1, ECUAddress: 0x4A, FunctionalAddress: 0x33, HasFunctional: true},
			CANIDs{Request: 0x18DA4AF1, Response: 0x18DAF14A, Functional: 0x18DB33F1, HasFunctional: true, Extended: true}},
		{"extended", Addressing{Mode: Extended, IDBits: 11, PhysicalRequest: 0x6F1, PhysicalResponse: 0x640, FunctionalRequest: 0x6F1,
			HasFunctional: true, TesterAddress: 0xF1, ECUAddress: 0x40, FunctionalAddress: 0xDF},
			CANIDs{Request: 0x6F1, Response: 0x640, Functional: 0x6F1, HasFunctional: true,
				RequestPrefix: []byte{0x40}, ResponsePrefix: []byte{0xF1}, FunctionalPrefix: []byte{0xDF}}},
		{"mixed 11-bit", Addressing{Mode: Mixed, IDBits: 11, PhysicalRequest: 0x700, PhysicalResponse: 0x708, AddressExtension: 0x22},
			CANIDs{Request: 0x700, Response: 0x708, RequestPrefix: []byte{0x22}, ResponsePrefix: []byte{0x22}}},
		{"mixed 29-bit", Addressing{Mode: Mixed, IDBits: 29, TesterAddress: 0xF1, ECUAddress: 0x10, FunctionalAddress: 0x33, HasFunctional: true, AddressExtension: 0x05},
			CANIDs{Request: 0x18CE10F1, Response: 0x18CEF110, Functional: 0x18CD33F1, HasFunctional: true, Extended: true,
				RequestPrefix: []byte{0x05}, ResponsePrefix: []byte{0x05}, FunctionalPrefix: []byte{0x05}}},
	}
	for _, tt := range tests {
		if got := tt.a.IDs(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: IDs() = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestCRC16CheckValue(t *testing.T) {
	if got := CRC16([]byte("123456789")); got != 0x29B1 {
		t.Fatalf("CRC16(123456789) = %#04x, want 0x29B1", got)
	}
	if got := CRC16([]byte("1234"), []byte("56789")); got != 0x29B1 {
		t.Fatalf("CRC16 in two parts = %#04x, want 0x29B1", got)
	}
	if got := CRC16(); got != 0xFFFF {
		t.Fatalf("CRC16() = %#04x, want the initial value 0xFFFF", got)
	}
}

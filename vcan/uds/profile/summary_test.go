package profile

import "testing"

func TestSummary(t *testing.T) {
	want := map[string]string{
		"shekit-default":   "shekit-default: normal 11-bit 0x7e0/0x7e8, classic CAN, padding 0xcc; SecurityAccess 0x01 aes-cmac; LoadKey: routine-start 0xfd10",
		"did-canfd":        "did-canfd: normal-fixed 29-bit 0x18da4af1/0x18daf14a, CAN FD TX_DL 64 BRS, padding 0xaa; SecurityAccess 0x11 aes-cmac; LoadKey: write-did 0x0e10 read-did 0x0e11",
		"doip-default":     "doip-default: DoIP 0x1001 from tester 0x0e80, behind it normal 11-bit 0x7e0/0x7e8, classic CAN, padding 0xcc; SecurityAccess 0x01 aes-cmac; LoadKey: routine-start 0xfd10",
		"extended-seedkey": "extended-seedkey: extended 11-bit 0x6f1/0x640 (address bytes 0x40/0xf1), classic CAN, no padding; SecurityAccess 0x03 external; LoadKey: request-download transfer-data request-transfer-exit",
	}
	for _, p := range Builtin() {
		if got := p.Summary(); got != want[p.Name] {
			t.Errorf("Summary\n%s\nwant\n%s", got, want[p.Name])
		}
	}
}

package profile

import (
	"strings"
	"testing"
)

// doipBase is base reached over DoIP through a gateway, its CAN side kept. Line numbers matter.
var doipBase = strings.Replace(base, "name: test-ecu\n", `name: test-ecu
transport: doip
doip:
  logical_address: 0x1001
  tester_address: 0x0E80
  entity: 192.0.2.10:13400
`, 1)

func TestParseDoIP(t *testing.T) {
	p, err := Parse("t.yaml", []byte(doipBase))
	if err != nil {
		t.Fatal(err)
	}
	if !p.OverDoIP() || p.DoIP != (DoIPAddressing{LogicalAddress: 0x1001, TesterAddress: 0x0E80, Entity: "192.0.2.10:13400"}) ||
		!p.HasAddressing || p.Addressing.PhysicalRequest != 0x7E0 {
		t.Fatalf("parsed transport %q, doip %+v, addressing %v %+v", p.Transport, p.DoIP, p.HasAddressing, p.Addressing)
	}
	want := "test-ecu: DoIP 0x1001 from tester 0x0e80 at 192.0.2.10:13400, behind it normal 11-bit 0x7e0/0x7e8, classic CAN, padding 0xcc; SecurityAccess 0x01 aes-cmac; LoadKey: routine-start 0xfd10"
	if got := p.Summary(); got != want {
		t.Errorf("Summary\n%s\nwant\n%s", got, want)
	}

	// An ECU with its own Ethernet port: no CAN side, the tester address and entity defaulted.
	own := strings.Replace(doipBase, "  tester_address: 0x0E80\n  entity: 192.0.2.10:13400\n", "", 1)
	own = strings.Replace(own, "addressing:\n  mode: normal\n  request_id: 0x7E0\n  response_id: 0x7E8\n", "", 1)
	own = strings.Replace(own, "  can: classic\n  padding: 0xCC\n", "", 1)
	p, err = Parse("t.yaml", []byte(own))
	if err != nil {
		t.Fatal(err)
	}
	if p.HasAddressing || p.DoIP != (DoIPAddressing{LogicalAddress: 0x1001, TesterAddress: 0x0E00}) || p.Link.P2 != 50_000_000 {
		t.Fatalf("parsed doip %+v, addressing %v, link %+v", p.DoIP, p.HasAddressing, p.Link)
	}
	want = "test-ecu: DoIP 0x1001 from tester 0x0e00; SecurityAccess 0x01 aes-cmac; LoadKey: routine-start 0xfd10"
	if got := p.Summary(); got != want {
		t.Errorf("Summary\n%s\nwant\n%s", got, want)
	}

	p, err = Parse("t.yaml", []byte(base))
	if err != nil || p.Transport != TransportCAN || p.OverDoIP() || !p.HasAddressing {
		t.Errorf("a profile without transport: %q, over DoIP %v, addressing %v, %v; want CAN", p.Transport, p.OverDoIP(), p.HasAddressing, err)
	}
}

func TestParseDoIPRefusesMistakes(t *testing.T) {
	noCAN := strings.Replace(doipBase, "addressing:\n  mode: normal\n  request_id: 0x7E0\n  response_id: 0x7E8\n", "", 1)
	for _, tt := range []struct{ name, src, old, new, want string }{
		{"unknown transport", doipBase, "transport: doip", "transport: ethernet", `t.yaml:3: transport: "ethernet" is not one of can, doip`},
		{"doip on CAN", doipBase, "transport: doip", "transport: can",
			"t.yaml:4: doip: not used on CAN (transport: doip reaches the ECU over DoIP)"},
		{"doip without its section", doipBase, "doip:\n  logical_address: 0x1001\n  tester_address: 0x0E80\n  entity: 192.0.2.10:13400\n", "",
			"t.yaml:1: doip: missing"},
		{"no logical address", doipBase, "  logical_address: 0x1001\n", "", "t.yaml:5: doip.logical_address: missing"},
		{"logical address 0", doipBase, "logical_address: 0x1001", "logical_address: 0",
			"t.yaml:5: doip.logical_address: 0 is out of range 0x0001..0x0DFF or 0x1000..0x7FFF (an ECU's physical address, ISO 13400-2)"},
		{"functional logical address", doipBase, "logical_address: 0x1001", "logical_address: 0xE400",
			"t.yaml:5: doip.logical_address: 0xE400 is out of range 0x0001..0x0DFF"},
		{"a tester's logical address", doipBase, "logical_address: 0x1001", "logical_address: 0x0E80",
			"t.yaml:5: doip.logical_address: 0x0E80 is a tester's address: want 0x0001..0x0DFF or 0x1000..0x7FFF"},
		{"tester address", doipBase, "tester_address: 0x0E80", "tester_address: 0x1000",
			"t.yaml:6: doip.tester_address: 0x1000 is out of range 0x0E00..0x0FFF (external test equipment)"},
		{"entity without a port", doipBase, "entity: 192.0.2.10:13400", "entity: 192.0.2.10",
			`t.yaml:7: doip.entity: "192.0.2.10": want HOST:PORT, e.g. 192.0.2.10:13400`},
		{"entity port", doipBase, "entity: 192.0.2.10:13400", "entity: 192.0.2.10:70000",
			`t.yaml:7: doip.entity: "192.0.2.10:70000": want HOST:PORT`},
		{"entity not a string", doipBase, "entity: 192.0.2.10:13400", "entity: 13400", "t.yaml:7: doip.entity: want a string, got integer 13400"},
		{"unknown doip field", doipBase, "  entity: 192.0.2.10:13400\n", "  port: 13400\n",
			"t.yaml:7: doip.port: unknown field (want one of logical_address, tester_address, entity)"},
		{"CAN link without addressing", noCAN, "padding: 0xCC", "padding: 0xCC",
			"t.yaml:9: link.can: not used over DoIP without addressing (only p2, p2_star and s3 apply)"},
		{"CAN addressing still checked", doipBase, "request_id: 0x7E0", "request_id: 0x800",
			"t.yaml:10: addressing.request_id: 0x800 is out of range 0..0x7FF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(tt.src, tt.old) {
				t.Fatalf("source has no %q", tt.old)
			}
			_, err := Parse("t.yaml", []byte(strings.Replace(tt.src, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}

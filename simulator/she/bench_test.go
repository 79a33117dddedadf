package she

import "testing"

// benchUpdate is the OEM document's MasterECUKey example (vectors/she-reference.json,
// oem-doc-a-master-ecu-key).
var benchUpdate = KeyUpdate{
	UID:     UID{0x00, 0x03, 0x00, 0x01, 14: 0x02},
	KeyID:   MasterECUKey,
	AuthID:  MasterECUKey,
	NewKey:  [16]byte{0x39, 0xe6, 0x35, 0x4e, 0xe4, 0x0d, 0x0a, 0xb4, 0x87, 0x02, 0x5f, 0xb5, 0xdb, 0x08, 0xa7, 0x68},
	Counter: 1,
	Flags:   BootProtection | DebuggerProtection | Wildcard,
}

// BenchmarkM1M5 builds all five messages: six AES key schedules, two CMACs.
func BenchmarkM1M5(b *testing.B) {
	u := benchUpdate
	b.ReportAllocs()
	for b.Loop() {
		u.Counter = u.Counter%MaxCounter + 1
		if _, err := BuildMessages(u); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadKey runs CMD_LOAD_KEY on an engine without persistence: check M3, decrypt M2, check
// UID and counter, store, build M4 and M5. Each iteration loads the next counter, prepared ahead.
func BenchmarkLoadKey(b *testing.B) {
	const n = 1024
	msgs := make([]Messages, n)
	for i := range msgs {
		u := benchUpdate
		u.KeyID, u.AuthID = Key1, MasterECUKey
		u.Counter = uint32(i + 1)
		m, err := BuildMessages(u)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	var e *Engine
	i := n
	b.ReportAllocs()
	for b.Loop() {
		if i == n {
			b.StopTimer()
			e = NewEngine(ProfileAUTOSAR, NVM{UID: benchUpdate.UID}, nil)
			i = 0
			b.StartTimer()
		}
		m := &msgs[i]
		if _, _, erc := e.LoadKey(m.M1, m.M2, m.M3); erc != NoError {
			b.Fatal(i, erc)
		}
		i++
	}
}

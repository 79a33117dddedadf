package conformance_test

import (
	"crypto/aes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/aead/cmac"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vectors"
)

// scenario is one record of she-engine-rules.json.
type scenario struct {
	Profile     string
	NoSecretKey bool `json:"no_secret_key"`
	Factory     []struct {
		Slot           uint8
		Key            hexBytes
		Counter        uint32
		Flags          string
		BootMACOfImage bool `json:"boot_mac_of_image"`
	}
	Steps []scenarioStep
}

type scenarioStep struct {
	Cmd            string
	Expect         string
	UID            string   `json:"uid"`
	KeyID          uint8    `json:"key_id"`
	AuthID         uint8    `json:"auth_id"`
	AuthKey        hexBytes `json:"auth_key"`
	NewKey         hexBytes `json:"new_key"`
	Key            hexBytes
	MasterKey      string `json:"master_key"`
	Counter        uint32
	Flags          string
	Tamper         string
	TamperByte     *int `json:"tamper_byte"`
	MACBits        int  `json:"mac_bits"`
	Verified       *bool
	Slot           uint8
	Loaded         *bool
	BootMACOfImage bool `json:"boot_mac_of_image"`
	Image          *string
	Auth           string
	Attached       bool
	Set, Clear     []string
}

// independentCMAC is AES-CMAC by github.com/aead/cmac, not by the model under test.
func independentCMAC(key []byte, msg []byte) [16]byte {
	b, err := aes.NewCipher(key)
	Expect(err).NotTo(HaveOccurred())
	tag, err := cmac.Sum(msg, b, 16)
	Expect(err).NotTo(HaveOccurred())
	return [16]byte(tag)
}

// independentBootMAC is CMAC(BOOT_MAC_KEY, 0^96 | size in bits (32, big-endian) | image).
func independentBootMAC(key, image []byte) [16]byte {
	msg := make([]byte, 16, 16+len(image))
	binary.BigEndian.PutUint32(msg[12:], uint32(len(image))*8)
	return independentCMAC(key, append(msg, image...))
}

var sregBits = map[string]she.Status{
	"BUSY": she.StatusBusy, "SECURE_BOOT": she.StatusSecureBoot, "BOOT_INIT": she.StatusBootInit,
	"BOOT_FINISHED": she.StatusBootFinished, "BOOT_OK": she.StatusBootOK, "RND_INIT": she.StatusRNDInit,
	"EXT_DEBUGGER": she.StatusExtDebugger, "INT_DEBUGGER": she.StatusIntDebugger,
}

func defaultHex(f *vectors.File, name string) hexBytes {
	var h hexBytes
	Expect(json.Unmarshal(f.Defaults[name], &h)).To(Succeed(), "default %s", name)
	return h
}

// runEngineScenario plays one scenario against a fresh engine.
func runEngineScenario(f *vectors.File, r vectors.Record) {
	var sc scenario
	Expect(r.Decode(&sc)).To(Succeed())
	profile, err := she.ProfileByName(sc.Profile)
	Expect(err).NotTo(HaveOccurred())
	uid := defaultHex(f, "uid").uid()
	image := []byte(defaultHex(f, "boot_image"))

	nvm := she.NVM{UID: uid}
	if !sc.NoSecretKey {
		nvm.Slots[she.SecretKey] = she.Slot{Key: defaultHex(f, "secret_key").block16(), Loaded: true}
	}
	for _, fs := range sc.Factory {
		s := she.Slot{Counter: fs.Counter, Loaded: true}
		if fs.BootMACOfImage {
			s.Key = independentBootMAC(nvm.Slots[she.BootMACKey].Key[:], image)
		} else {
			s.Key = fs.Key.block16()
			s.Flags, err = she.ParseFlags(fs.Flags)
			Expect(err).NotTo(HaveOccurred())
		}
		nvm.Slots[fs.Slot] = s
	}
	e := she.NewEngine(profile, nvm, nil)
	var challenge [16]byte
	block := make([]byte, 32)
	for i, st := range sc.Steps {
		where := fmt.Sprintf("step %d (%s)", i, st.Cmd)
		expect := func(erc she.ERC) {
			ExpectWithOffset(1, erc.String()).To(Equal(st.Expect), where)
		}
		switch st.Cmd {
		case "LOAD_KEY":
			u := she.KeyUpdate{UID: uid, KeyID: she.KeyID(st.KeyID), AuthID: she.KeyID(st.AuthID), Counter: st.Counter}
			switch st.UID {
			case "", "own":
			case "wildcard":
				u.UID = she.WildcardUID
			default:
				u.UID, err = she.ParseUID(st.UID)
				Expect(err).NotTo(HaveOccurred(), where)
			}
			if st.AuthKey != nil {
				u.AuthKey = st.AuthKey.block16()
			}
			u.NewKey = st.NewKey.block16()
			u.Flags, err = she.ParseFlags(st.Flags)
			Expect(err).NotTo(HaveOccurred(), where)
			m, err := she.BuildMessages(u)
			Expect(err).NotTo(HaveOccurred(), where)
			switch st.Tamper {
			case "":
			case "M1":
				m.M1[0] ^= 0x80
			case "M2":
				m.M2[31] ^= 0x01
			case "M3":
				m.M3[0] ^= 0x01
			default:
				Fail(where + ": unknown tamper " + st.Tamper)
			}
			m4, m5, erc := e.LoadKey(m.M1, m.M2, m.M3)
			expect(erc)
			if erc != she.NoError {
				Expect(m4).To(BeZero(), where)
				Expect(m5).To(BeZero(), where)
				continue
			}
			p := she.VerifyM4M5(u.NewKey, m4, m5)
			Expect(p).To(Equal(she.Proof{UID: uid, KeyID: u.KeyID, AuthID: u.AuthID, Counter: u.Counter,
				M4Valid: true, M5Valid: true}), where+": M4/M5 prove the stored key")
			if u.UID == uid {
				Expect(m4).To(Equal(m.M4), where)
				Expect(m5).To(Equal(m.M5), where)
			}
		case "CHECK_SLOT":
			s := e.NVM().Slots[st.Slot]
			Expect(s.Loaded).To(Equal(*st.Loaded), where+": loaded")
			if s.Loaded && !st.BootMACOfImage {
				Expect(s.Counter).To(Equal(st.Counter), where+": counter")
			}
			if st.Flags != "" {
				want, err := she.ParseFlags(st.Flags)
				Expect(err).NotTo(HaveOccurred(), where)
				Expect(s.Flags).To(Equal(want), where+": flags")
			}
			if st.BootMACOfImage {
				bootMACKey := e.NVM().Slots[she.BootMACKey].Key
				Expect(s.Key).To(Equal(independentBootMAC(bootMACKey[:], image)), where)
			}
		case "CHECK_SREG":
			sreg := e.Status()
			for _, name := range st.Set {
				Expect(sreg&sregBits[name]).NotTo(BeZero(), "%s: %s set in SREG %02x", where, name, uint8(sreg))
			}
			for _, name := range st.Clear {
				Expect(sreg&sregBits[name]).To(BeZero(), "%s: %s clear in SREG %02x", where, name, uint8(sreg))
			}
		case "ENC_ECB":
			expect(e.EncryptECB(she.KeyID(st.KeyID), block, block))
		case "DEC_ECB":
			expect(e.DecryptECB(she.KeyID(st.KeyID), block, block))
		case "ENC_CBC":
			expect(e.EncryptCBC(she.KeyID(st.KeyID), [16]byte{1}, block, block))
		case "DEC_CBC":
			expect(e.DecryptCBC(she.KeyID(st.KeyID), [16]byte{1}, block, block))
		case "GENERATE_MAC":
			msg := []byte("scenario message")
			mac, erc := e.GenerateMAC(she.KeyID(st.KeyID), msg)
			expect(erc)
			if erc == she.NoError && st.Key != nil {
				Expect(mac).To(Equal(independentCMAC(st.Key, msg)), where)
			}
		case "VERIFY_MAC":
			msg := []byte("scenario message")
			var mac [16]byte
			if st.Key != nil {
				mac = independentCMAC(st.Key, msg)
			}
			if st.TamperByte != nil {
				mac[*st.TamperByte] ^= 0x01
			}
			ok, erc := e.VerifyMAC(she.KeyID(st.KeyID), msg, mac[:], st.MACBits)
			expect(erc)
			if st.Verified != nil {
				Expect(ok).To(Equal(*st.Verified), where+": verification status")
			}
		case "SECURE_BOOT":
			img := []byte{}
			switch *st.Image {
			case "firmware":
				img = image
			case "tampered":
				img = append([]byte{}, image...)
				img[len(img)-1] ^= 0x01
			}
			expect(e.SecureBoot(img))
		case "BOOT_OK":
			expect(e.BootOK())
		case "BOOT_FAILURE":
			expect(e.BootFailure())
		case "INIT_RNG":
			expect(e.InitRNG())
		case "RND":
			_, erc := e.Rnd()
			expect(erc)
		case "EXTEND_SEED":
			expect(e.ExtendSeed([16]byte{0xe0}))
		case "DEBUG_CHALLENGE":
			var erc she.ERC
			challenge, erc = e.DebugChallenge()
			expect(erc)
		case "DEBUG_AUTHORIZATION":
			master, err := hexBlock(st.MasterKey)
			Expect(err).NotTo(HaveOccurred(), where)
			auth := she.DebugAuthorization(master, challenge, uid)
			if st.Auth == "invalid" {
				auth[0] ^= 0x01
			}
			expect(e.DebugAuthorization(auth))
		case "LOAD_PLAIN_KEY":
			expect(e.LoadPlainKey(st.Key.block16()))
		case "EXPORT_RAM_KEY":
			m, erc := e.ExportRAMKey()
			expect(erc)
			if erc == she.NoError {
				o := she.OpenM1M3(e.NVM().Slots[she.SecretKey].Key, m.M1, m.M2, m.M3)
				Expect(o).To(Equal(she.Opened{UID: uid, KeyID: profile.RAMKey, AuthID: she.SecretKey,
					NewKey: st.Key.block16(), M3Valid: true}), where)
				Expect(she.VerifyM4M5(st.Key.block16(), m.M4, m.M5).M5Valid).To(BeTrue(), where)
			}
		case "ATTACH_DEBUGGER":
			Expect(e.AttachDebugger(st.Attached)).To(Equal(she.NoError), where)
		case "POWER_CYCLE":
			Expect(e.PowerCycle()).To(Equal(she.NoError), where)
		case "GET_ID":
			ch := [16]byte{0xc4, 0xa1}
			gotUID, sreg, mac, erc := e.GetID(ch)
			expect(erc)
			Expect(gotUID).To(Equal(uid), where)
			Expect(sreg).To(Equal(e.Status()), where+": SREG as GET_STATUS reads it")
			if st.MasterKey == "empty" {
				Expect(mac).To(BeZero(), where)
				continue
			}
			master, err := hexBlock(st.MasterKey)
			Expect(err).NotTo(HaveOccurred(), where)
			msg := append(append(ch[:], uid[:]...), byte(sreg))
			Expect(mac).To(Equal(independentCMAC(master[:], msg)), where)
		default:
			Fail(fmt.Sprintf("%s: unknown command", where))
		}
	}
}

func hexBlock(s string) ([16]byte, error) {
	var h hexBytes
	if err := h.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
		return [16]byte{}, err
	}
	if len(h) != 16 {
		return [16]byte{}, fmt.Errorf("want 16 bytes, got %d", len(h))
	}
	return [16]byte(h), nil
}

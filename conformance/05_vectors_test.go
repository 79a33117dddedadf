package conformance_test

import (
	"crypto/aes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vectors"
)

// hexBytes is a byte string written as hex in a vector file.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

// block16 returns h as a 16-byte array, failing the spec if it is not 16 bytes long.
func (h hexBytes) block16() [16]byte {
	ExpectWithOffset(1, h).To(HaveLen(16))
	return [16]byte(h)
}

func (h hexBytes) block32() [32]byte {
	ExpectWithOffset(1, h).To(HaveLen(32))
	return [32]byte(h)
}

func (h hexBytes) uid() she.UID {
	ExpectWithOffset(1, h).To(HaveLen(15))
	return she.UID(h)
}

// vectorRunners runs each vector type of the vector files. A type not listed here is a failure.
var vectorRunners = map[string]func(*vectors.File, vectors.Record){
	"aes128_ecb_encrypt": func(_ *vectors.File, r vectors.Record) {
		var v struct{ Key, Plaintext, Ciphertext hexBytes }
		Expect(r.Decode(&v)).To(Succeed())
		b, err := aes.NewCipher(v.Key)
		Expect(err).NotTo(HaveOccurred())
		out := make([]byte, len(v.Plaintext))
		b.Encrypt(out, v.Plaintext)
		Expect(out).To(Equal([]byte(v.Ciphertext)))
	},
	"aes128_cbc_encrypt": func(_ *vectors.File, r vectors.Record) {
		var v struct{ Key, IV, Plaintext, Ciphertext hexBytes }
		Expect(r.Decode(&v)).To(Succeed())
		// Through the engine's CMD_ENC_CBC with the key in KEY_1 (a cipher key).
		e := engineWithKey(she.Key1, v.Key.block16(), 0)
		out := make([]byte, len(v.Plaintext))
		Expect(e.EncryptCBC(she.Key1, v.IV.block16(), out, v.Plaintext)).To(Equal(she.NoError))
		Expect(out).To(Equal([]byte(v.Ciphertext)))
		back := make([]byte, len(out))
		Expect(e.DecryptCBC(she.Key1, v.IV.block16(), back, out)).To(Equal(she.NoError))
		Expect(back).To(Equal([]byte(v.Plaintext)))
	},
	"cmac_subkeys": func(_ *vectors.File, r vectors.Record) {
		var v struct{ Key, L, K1, K2 hexBytes }
		Expect(r.Decode(&v)).To(Succeed())
		// The subkeys are internal to CMAC; they show through two messages. L = AES_K(0):
		b, _ := aes.NewCipher(v.Key)
		var l [16]byte
		b.Encrypt(l[:], l[:])
		Expect(l[:]).To(Equal([]byte(v.L)))
		// CMAC of one complete block M is AES_K(M ^ K1): choose M = K1 to get AES_K(0) = L.
		Expect(she.CMAC(v.Key.block16(), v.K1)).To(Equal(v.L.block16()))
		// CMAC of the empty message is AES_K(80 00..00 ^ K2), computed here with the vector's K2.
		pad := [16]byte{0x80}
		for i := range pad {
			pad[i] ^= v.K2[i]
		}
		var want [16]byte
		b.Encrypt(want[:], pad[:])
		Expect(she.CMAC(v.Key.block16(), nil)).To(Equal(want))
	},
	"aes128_cmac": func(_ *vectors.File, r vectors.Record) {
		var v struct{ Key, Message, Tag hexBytes }
		Expect(r.Decode(&v)).To(Succeed())
		Expect(she.CMAC(v.Key.block16(), v.Message)).To(Equal(v.Tag.block16()))
	},
	"aes_mp_compress": func(_ *vectors.File, r vectors.Record) {
		var w struct {
			Message hexBytes
			Padded  hexBytes `json:"padded_input"`
			Output  hexBytes
			H0      hexBytes
		}
		Expect(r.Decode(&w)).To(Succeed())
		Expect(w.H0).To(Equal(hexBytes(make([]byte, 16))), "the model compresses from H0 = 0")
		Expect(she.PadMP(w.Message)).To(Equal([]byte(w.Padded)))
		out, err := she.CompressMP(w.Padded)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal(w.Output.block16()))
		Expect(she.MP(w.Message)).To(Equal(w.Output.block16()))
	},
	"she_kdf": func(_ *vectors.File, r vectors.Record) {
		var v struct{ Key, Constant, Output hexBytes }
		Expect(r.Decode(&v)).To(Succeed())
		Expect(she.KDF(v.Key.block16(), v.Constant.block16())).To(Equal(v.Output.block16()))
	},
	"she_load_key": func(_ *vectors.File, r vectors.Record) {
		var v struct {
			UID                hexBytes `json:"uid"`
			KeyID              uint8    `json:"key_id"`
			AuthID             uint8    `json:"auth_id"`
			AuthKey            hexBytes `json:"auth_key"`
			NewKey             hexBytes `json:"new_key"`
			Counter            uint32
			Flags              uint8 `json:"flags_5bit"`
			M1, M2, M3, M4, M5 hexBytes
		}
		Expect(r.Decode(&v)).To(Succeed())
		u := she.KeyUpdate{UID: v.UID.uid(), KeyID: she.KeyID(v.KeyID), AuthID: she.KeyID(v.AuthID),
			AuthKey: v.AuthKey.block16(), NewKey: v.NewKey.block16(), Counter: v.Counter, Flags: she.Flags(v.Flags)}
		m, err := she.BuildMessages(u)
		Expect(err).NotTo(HaveOccurred())
		Expect(hex.EncodeToString(m.M1[:])).To(Equal(hex.EncodeToString(v.M1)), "M1")
		Expect(hex.EncodeToString(m.M2[:])).To(Equal(hex.EncodeToString(v.M2)), "M2")
		Expect(hex.EncodeToString(m.M3[:])).To(Equal(hex.EncodeToString(v.M3)), "M3")
		Expect(hex.EncodeToString(m.M4[:])).To(Equal(hex.EncodeToString(v.M4)), "M4")
		Expect(hex.EncodeToString(m.M5[:])).To(Equal(hex.EncodeToString(v.M5)), "M5")

		o := she.OpenM1M3(v.AuthKey.block16(), v.M1.block16(), v.M2.block32(), v.M3.block16())
		Expect(o).To(Equal(she.Opened{UID: u.UID, KeyID: u.KeyID, AuthID: u.AuthID, Counter: u.Counter,
			Flags: u.Flags, NewKey: u.NewKey, M3Valid: true}))
		p := she.VerifyM4M5(v.NewKey.block16(), v.M4.block32(), v.M5.block16())
		Expect(p).To(Equal(she.Proof{UID: u.UID, KeyID: u.KeyID, AuthID: u.AuthID, Counter: u.Counter,
			M4Valid: true, M5Valid: true}))
	},
	"she_get_id": func(_ *vectors.File, r vectors.Record) {
		var v struct {
			Challenge, MAC hexBytes
			UID            hexBytes `json:"uid"`
			Master         hexBytes `json:"master_ecu_key"`
			SREG           hexBytes `json:"sreg"`
		}
		Expect(r.Decode(&v)).To(Succeed())
		Expect(v.SREG).To(HaveLen(1))
		Expect(she.GetIDMAC(v.Master.block16(), v.Challenge.block16(), v.UID.uid(), she.Status(v.SREG[0]))).
			To(Equal(v.MAC.block16()))
	},
	"she_debug_auth": func(_ *vectors.File, r vectors.Record) {
		var v struct {
			Challenge, Authorization hexBytes
			UID                      hexBytes `json:"uid"`
			Master                   hexBytes `json:"master_ecu_key"`
			KDebug                   hexBytes `json:"k_debug"`
		}
		Expect(r.Decode(&v)).To(Succeed())
		Expect(she.KDF(v.Master.block16(), she.DebugKeyC)).To(Equal(v.KDebug.block16()))
		Expect(she.DebugAuthorization(v.Master.block16(), v.Challenge.block16(), v.UID.uid())).
			To(Equal(v.Authorization.block16()))
	},
	"she_export_ram_key": func(_ *vectors.File, r vectors.Record) {
		var v struct {
			UID                hexBytes `json:"uid"`
			RAMKey             hexBytes `json:"ram_key"`
			SecretKey          hexBytes `json:"secret_key"`
			M1, M2, M3, M4, M5 hexBytes
		}
		Expect(r.Decode(&v)).To(Succeed())
		nvm := she.NVM{UID: v.UID.uid()}
		nvm.Slots[she.SecretKey] = she.Slot{Key: v.SecretKey.block16(), Loaded: true}
		e := she.NewEngine(she.ProfileAUTOSAR, nvm, nil)
		Expect(e.LoadPlainKey(v.RAMKey.block16())).To(Equal(she.NoError))
		m, erc := e.ExportRAMKey()
		Expect(erc).To(Equal(she.NoError))
		Expect(m).To(Equal(she.Messages{M1: v.M1.block16(), M2: v.M2.block32(), M3: v.M3.block16(),
			M4: v.M4.block32(), M5: v.M5.block16()}))
	},
	"she_prng": func(_ *vectors.File, r vectors.Record) {
		var v struct {
			SecretKey   hexBytes `json:"secret_key"`
			SeedIn      hexBytes `json:"prng_seed_in"`
			SeedOut     hexBytes `json:"prng_seed_out"`
			PRNGKey     hexBytes `json:"prng_key"`
			PRNGSeedKey hexBytes `json:"prng_seed_key"`
			Rnd1        hexBytes `json:"rnd_1"`
		}
		Expect(r.Decode(&v)).To(Succeed())
		Expect(she.KDF(v.SecretKey.block16(), she.PRNGKeyC)).To(Equal(v.PRNGKey.block16()))
		Expect(she.KDF(v.SecretKey.block16(), she.PRNGSeedKeyC)).To(Equal(v.PRNGSeedKey.block16()))
		nvm := she.NVM{PRNGSeed: v.SeedIn.block16()}
		nvm.Slots[she.SecretKey] = she.Slot{Key: v.SecretKey.block16(), Loaded: true}
		e := she.NewEngine(she.ProfileAUTOSAR, nvm, nil)
		Expect(e.InitRNG()).To(Equal(she.NoError))
		Expect(e.NVM().PRNGSeed).To(Equal(v.SeedOut.block16()))
		rnd, erc := e.Rnd()
		Expect(erc).To(Equal(she.NoError))
		Expect(rnd).To(Equal(v.Rnd1.block16()))
	},
	"she_prng_sequence": func(_ *vectors.File, r vectors.Record) {
		var v struct {
			SecretKey       hexBytes `json:"secret_key"`
			SeedIn          hexBytes `json:"prng_seed_in"`
			SeedKey         hexBytes `json:"prng_seed_key"`
			SeedAfterInit   hexBytes `json:"prng_seed_after_init"`
			Rnd1            hexBytes `json:"rnd_1"`
			Entropy         hexBytes
			StateAfterExt   hexBytes `json:"prng_state_after_extend"`
			SeedAfterExtend hexBytes `json:"prng_seed_after_extend"`
		}
		Expect(r.Decode(&v)).To(Succeed())
		Expect(she.KDF(v.SecretKey.block16(), she.PRNGSeedKeyC)).To(Equal(v.SeedKey.block16()))
		nvm := she.NVM{PRNGSeed: v.SeedIn.block16()}
		nvm.Slots[she.SecretKey] = she.Slot{Key: v.SecretKey.block16(), Loaded: true}
		e := she.NewEngine(she.ProfileAUTOSAR, nvm, nil)
		_, erc := e.Rnd()
		Expect(erc).To(Equal(she.RNGSeed), "CMD_RND before CMD_INIT_RNG")
		Expect(e.InitRNG()).To(Equal(she.NoError))
		Expect(e.NVM().PRNGSeed).To(Equal(v.SeedAfterInit.block16()))
		rnd, erc := e.Rnd()
		Expect(erc).To(Equal(she.NoError))
		Expect(rnd).To(Equal(v.Rnd1.block16()))
		Expect(e.ExtendSeed(v.Entropy.block16())).To(Equal(she.NoError))
		Expect(e.NVM().PRNGSeed).To(Equal(v.SeedAfterExtend.block16()))
		// The extended state shows in the next CMD_RND: ENC_ECB(PRNG_KEY, state), computed here
		// with the standard library's AES.
		prngKey := she.KDF(v.SecretKey.block16(), she.PRNGKeyC)
		b, _ := aes.NewCipher(prngKey[:])
		var want [16]byte
		b.Encrypt(want[:], v.StateAfterExt)
		rnd, erc = e.Rnd()
		Expect(erc).To(Equal(she.NoError))
		Expect(rnd).To(Equal(want))
	},
	"she_extend_seed": func(_ *vectors.File, r vectors.Record) {
		var v struct {
			Entropy  hexBytes
			State    hexBytes `json:"prng_state"`
			StateOut hexBytes `json:"prng_state_out"`
			Ext      hexBytes `json:"prng_extension_c"`
		}
		Expect(r.Decode(&v)).To(Succeed())
		Expect(v.Ext.block16()).To(Equal(she.PRNGExtensionC))
		in := append(append(append([]byte{}, v.State...), v.Entropy...), v.Ext...)
		out, err := she.CompressMP(in)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal(v.StateOut.block16()))
	},
}

// engineWithKey returns an AUTOSAR engine whose slot id holds key with flags, booted.
func engineWithKey(id she.KeyID, key [16]byte, flags she.Flags) *she.Engine {
	var nvm she.NVM
	nvm.Slots[id] = she.Slot{Key: key, Counter: 1, Flags: flags, Loaded: true}
	return she.NewEngine(she.ProfileAUTOSAR, nvm, nil)
}

func init() {
	vectorRunners["she_engine_scenario"] = runEngineScenario
}

var _ = suite("vectors", "Vectors", func() {
	for _, name := range vectors.Files() {
		file, err := vectors.Load(name)
		if err != nil {
			It("loads "+name, func() { Fail(err.Error()) })
			continue
		}
		Context(fmt.Sprintf("%s (%s)", name, file.Schema), func() {
			for _, rec := range file.Records {
				It(rec.ID, Label(rec.Type), func() {
					run, ok := vectorRunners[rec.Type]
					if !ok {
						Fail(fmt.Sprintf("vector %s has type %q, which no runner knows", rec.ID, rec.Type))
					}
					run(file, rec)
				})
			}
		})
	}
})

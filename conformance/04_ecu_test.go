package conformance_test

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vectors"
)

// memECU starts a simulated ECU on a fresh in-memory bus and returns a client for it.
func memECU(cfg ecu.Config) *ecu.Client {
	h := vcan.NewHub()
	et := isotp.New(h.Connect(vcan.ExactID(ecu.DefaultRequestID, false)), ecu.DefaultResponseID, ecu.DefaultRequestID)
	e, err := ecu.New(cfg, et)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	go e.Serve(ctx)
	ct := isotp.New(h.Connect(vcan.ExactID(ecu.DefaultResponseID, false)), ecu.DefaultRequestID, ecu.DefaultResponseID)
	DeferCleanup(func() { cancel(); ct.Close(); et.Close(); h.Close() })
	return ecu.NewClient(ct)
}

// loadKeyRecord reads a she_load_key vector.
func loadKeyRecord(id string) (uid she.UID, m she.Messages, newKey [16]byte) {
	f, err := vectors.Load("she-reference.json")
	Expect(err).NotTo(HaveOccurred())
	for _, r := range f.Records {
		if r.ID != id {
			continue
		}
		var v struct {
			UID                hexBytes `json:"uid"`
			M1, M2, M3, M4, M5 hexBytes
			NewKey             hexBytes `json:"new_key"`
		}
		Expect(r.Decode(&v)).To(Succeed())
		return v.UID.uid(), she.Messages{M1: v.M1.block16(), M2: v.M2.block32(), M3: v.M3.block16(),
			M4: v.M4.block32(), M5: v.M5.block16()}, v.NewKey.block16()
	}
	Fail("no vector " + id)
	return
}

// expectNRC requires err to be a negative response with code nrc.
func expectNRC(err error, nrc uds.NRC) {
	var nr *uds.NegativeResponseError
	ExpectWithOffset(1, errors.As(err, &nr)).To(BeTrue(), "want NRC %v, got %v", nrc, err)
	ExpectWithOffset(1, nr.NRC).To(Equal(nrc))
}

var _ = Describe("ECU over UDS, ISO-TP and the in-memory bus", Ordered, func() {
	var ctx context.Context
	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
		DeferCleanup(cancel)
	})

	It("answers the OEM document's MasterECUKey example with the document's M4 and M5", func() {
		uid, m, master := loadKeyRecord("oem-doc-a-master-ecu-key")
		c := memECU(ecu.Config{UID: uid})
		Expect(c.Prepare(ctx, &ecu.DefaultSecurityKey)).To(Succeed())
		Expect(c.UID(ctx)).To(Equal(uid))
		res, err := c.LoadKey(ctx, m.M1, m.M2, m.M3)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ERC).To(Equal(she.NoError))
		Expect(hex.EncodeToString(res.M4[:])).To(Equal(hex.EncodeToString(m.M4[:])))
		Expect(hex.EncodeToString(res.M5[:])).To(Equal(hex.EncodeToString(m.M5[:])))

		By("GetID, whose MAC is CMAC(MASTER_ECU_KEY, challenge | UID | SREG)")
		challenge := [16]byte{0xc4}
		id, err := c.GetID(ctx, challenge)
		Expect(err).NotTo(HaveOccurred())
		Expect(id.UID).To(Equal(uid))
		Expect(id.MAC).To(Equal(independentCMAC(master[:], append(append(challenge[:], uid[:]...), byte(id.SREG)))))

		By("refusing the same messages again: the counter is not greater")
		res, err = c.LoadKey(ctx, m.M1, m.M2, m.M3)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.ERC).To(Equal(she.KeyUpdateError))
	})

	It("stores the SecOCKey example and verifies and generates MACs with it", func() {
		uid, m, key := loadKeyRecord("oem-doc-d-secoc-key")
		c := memECU(ecu.Config{UID: uid})
		Expect(c.Prepare(ctx, &ecu.DefaultSecurityKey)).To(Succeed())
		res, err := c.LoadKey(ctx, m.M1, m.M2, m.M3)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.M4).To(Equal(m.M4))
		Expect(res.M5).To(Equal(m.M5))
		msg := [16]byte([]byte("SecOC freshness!"))
		mac := independentCMAC(key[:], msg[:])
		erc, verified, err := c.VerifyMAC(ctx, 5, msg, mac)
		Expect(err).NotTo(HaveOccurred())
		Expect(erc).To(Equal(she.NoError))
		Expect(verified).To(BeTrue())
		mac[15] ^= 0x01
		_, verified, err = c.VerifyMAC(ctx, 5, msg, mac)
		Expect(err).NotTo(HaveOccurred())
		Expect(verified).To(BeFalse())
		erc, got, err := c.GenerateMAC(ctx, 5, msg)
		Expect(err).NotTo(HaveOccurred())
		Expect(erc).To(Equal(she.NoError))
		Expect(got).To(Equal(independentCMAC(key[:], msg[:])))
	})

	It("answers each negative response code of the diagnostic profile where it applies", func() {
		uid, m, _ := loadKeyRecord("oem-doc-a-master-ecu-key")
		c := memECU(ecu.Config{UID: uid, Lockout: 50 * time.Millisecond})
		do := func(req ...byte) error { _, err := c.Do(ctx, req); return err }
		expectNRC(do(0x85), uds.ServiceNotSupported)
		expectNRC(do(0x10, 0x7F), uds.SubFunctionNotSupported)
		expectNRC(do(0x22, 0xFD), uds.IncorrectMessageLengthOrInvalidFormat)
		expectNRC(do(0x22, 0x12, 0x34), uds.RequestOutOfRange)
		expectNRC(do(0x27, 0x01), uds.ServiceNotSupportedInActiveSession)
		expectNRC(do(0x11, 0x03), uds.SubFunctionNotSupportedInActiveSession)
		Expect(c.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		expectNRC(do(append([]byte{0x31, 0x01, 0xFD, 0x10}, make([]byte, 64)...)...), uds.SecurityAccessDenied)
		expectNRC(do(append([]byte{0x27, 0x02}, make([]byte, 16)...)...), uds.RequestSequenceError)
		for i := 1; i <= 3; i++ {
			Expect(do(0x27, 0x01)).To(Succeed())
			err := do(append([]byte{0x27, 0x02}, make([]byte, 16)...)...)
			if i < 3 {
				expectNRC(err, uds.InvalidKey)
			} else {
				expectNRC(err, uds.ExceededNumberOfAttempts)
			}
		}
		expectNRC(do(0x27, 0x01), uds.RequiredTimeDelayNotExpired)
		time.Sleep(70 * time.Millisecond)
		Expect(c.Prepare(ctx, &ecu.DefaultSecurityKey)).To(Succeed())

		failing := memECU(ecu.Config{UID: uid, NoSecurity: true, Faults: ecu.Faults{NVMFailure: true}})
		Expect(failing.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		_, err := failing.LoadKey(ctx, m.M1, m.M2, m.M3)
		expectNRC(err, uds.GeneralProgrammingFailure)
	})
})

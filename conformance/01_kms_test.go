package conformance_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vectors"
)

// freshUID is a UID no run has used: the configured EcuType and SupplierID, then 11 random bytes.
func freshUID() she.UID {
	var uid she.UID
	copy(uid[:4], confKeys.uidPrefix[:])
	rand.Read(uid[4:])
	return uid
}

// docSymmKeyEcuID is the EcuID of the document's SupplierSymmKey example request (section 3).
const docSymmKeyEcuID = "010203040506070801020304000300010000000000000000000002"

// randomBytes is n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// typeCluster is a SecOC cluster of the configured EcuType's ECUs: one of CONF_CLUSTER_IDS drawn
// at random, or without them a random ClusterID (a KMS that takes any cluster).
func typeCluster() [8]byte {
	if n := len(confKeys.clusters); n > 0 {
		return confKeys.clusters[mrand.IntN(n)]
	}
	return randomCluster()
}

// otherTypeCluster is a SecOC cluster of the configured EcuType's ECUs other than c.
func otherTypeCluster(c [8]byte) [8]byte {
	for {
		if o := typeCluster(); o != c {
			return o
		}
	}
}

// foreignCluster is a random ClusterID that is none of CONF_CLUSTER_IDS.
func foreignCluster() [8]byte {
	for {
		if c := randomCluster(); !slices.Contains(confKeys.clusters, c) {
			return c
		}
	}
}

// randomCluster is a ClusterID from crypto/rand.
func randomCluster() (c [8]byte) {
	rand.Read(c[:])
	return c
}

// ecuIDOf writes the EcuID of uid in cluster.
func ecuIDOf(cluster [8]byte, uid she.UID) string {
	return kmswire.EcuID{ClusterID: cluster, Model: [4]byte{0, 0, 0, 1}, UID: uid}.String()
}

// opened is a KMS answer checked with the SHE model: M1–M3 opened with the authorizing key,
// M4/M5 verified with the new key they carry.
func opened(rec *kmswire.Records, authKey [16]byte) she.Opened {
	ExpectWithOffset(1, rec).NotTo(BeNil())
	for _, v := range []string{rec.M1, rec.M2, rec.M3, rec.M4, rec.M5} {
		ExpectWithOffset(1, v).To(MatchRegexp("^[0-9a-f]*$"), "M-values are lowercase hex")
	}
	m, err := rec.Messages()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	o := she.OpenM1M3(authKey, m.M1, m.M2, m.M3)
	ExpectWithOffset(1, o.M3Valid).To(BeTrue(), "M3 is not the CMAC of M1|M2 under the expected authorizing key")
	p := she.VerifyM4M5(o.NewKey, m.M4, m.M5)
	ExpectWithOffset(1, p.M4Valid && p.M5Valid).To(BeTrue(), "M4/M5 do not prove the key M2 carries")
	ExpectWithOffset(1, []any{p.UID, p.KeyID, p.AuthID, p.Counter}).To(Equal([]any{o.UID, o.KeyID, o.AuthID, o.Counter}), "M4 names another update than M1/M2")
	return o
}

// cmacHex is AES-CMAC (aead/cmac, not the kit's) in lowercase hex.
func cmacHex(key, msg []byte) string {
	m := independentCMAC(key, msg)
	return hex.EncodeToString(m[:])
}

// syncSREG is the status register the README says a KMS assumes in a master key's KeySyncValue
// (the GET_ID MAC): SECURE_BOOT | BOOT_INIT | BOOT_FINISHED | BOOT_OK.
const syncSREG = she.StatusSecureBoot | she.StatusBootInit | she.StatusBootFinished | she.StatusBootOK

// initialMaster is the KMS's initial master key of the configured EcuType.
func initialMaster() [16]byte {
	return confKeys.initialMaster
}

var _ = suite("kms", "KMS supplier API", func() {
	var api *kmsAPI
	BeforeAll(func() { api = newKMSAPI() })

	provision := func(typ kmswire.ProvisioningType, keyID, ecuID string, extra map[string]string) *kmswire.Records {
		body := map[string]string{"ProvisioningType": string(typ), "EcuID": ecuID, "KeyID": keyID}
		if typ == kmswire.SecOCKey { // the document marks these required; Counter 1 asks for nothing more than last + 1
			body["SupplierSecretKey"] = conf.SupplierKey
			body["Counter"] = "1"
			body["Challenge"] = hex.EncodeToString(randomBytes(16))
		}
		for k, v := range extra {
			body[k] = v
		}
		return api.ok(http.MethodPost, kmswire.PathProvisioning, body)
	}
	put := func(path string, typ kmswire.ProvisioningType, keyID, ecuID, status string) {
		body := map[string]string{"ProvisioningType": string(typ), "EcuID": ecuID, "ResultStatus": status, "ResultMessage": ""}
		if typ == kmswire.SecOCKey {
			body["KeyID"] = keyID
		}
		if status != "Success" {
			body["ResultMessage"] = "LoadKey: SHE error code 0x07 ERC_KEY_UPDATE_ERROR"
		}
		api.ok(http.MethodPut, path, body)
	}

	It("issues an EcuMasterKey update authorized by the initial master key, flags 01101, counter 1", func() {
		uid := freshUID()
		o := opened(provision(kmswire.EcuMasterKey, "1", ecuIDOf(typeCluster(), uid), nil), initialMaster())
		Expect(o.UID).To(Equal(uid))
		Expect(o.KeyID).To(Equal(she.MasterECUKey))
		Expect(o.AuthID).To(Equal(she.MasterECUKey))
		Expect(o.Counter).To(BeEquivalentTo(1))
		Expect(o.Flags.String()).To(Equal("01101"))
	})

	It("answers the document's SupplierSymmKey example request with Success and its Records fields", func() {
		// The document's request as printed, its EcuID made one of the configured supplier's.
		ecuID := targetEcuID(docSymmKeyEcuID)
		id, _ := kmswire.ParseEcuID(ecuID)
		status, env := api.send(http.MethodPost, kmswire.PathProvisioning,
			`{"ProvisioningType": "SupplierSymmKey", "KeyID": "D", "EcuID": "`+ecuID+`"}`)
		Expect(status).To(Equal(http.StatusOK))
		Expect([]string{env.ResultStatus, env.ResultReason, env.ResultMessage}).To(Equal([]string{"Success", "", ""}))
		api.rec.keptContract(false)
		Expect(env.Records).NotTo(BeNil())
		if env.Records.KeyID == "" {
			observe("Records of a SupplierSymmKey answer without KeyID, as the document's example (the reference writes \"D\")")
		} else {
			Expect(env.Records.KeyID).To(Equal("D"), "KeyID, when present")
		}
		Expect(env.Records.M1).To(Equal(hex.EncodeToString(id.UID[:])+"d1"), "M1 = UID | KeyID D | AuthID 1")
		Expect(env.Records.KeySyncValue).To(BeEmpty(), "no Challenge, no KeySyncValue")
		for _, m := range []string{env.Records.M2, env.Records.M3, env.Records.M4, env.Records.M5} {
			Expect(m).To(MatchRegexp("^[0-9a-f]+$"))
		}
	})

	It("issues SupplierSymmKey (D) and SecOCKey (4..C) updates as MAC keys, flags 01111, authorized by the master key", func() {
		uid := freshUID()
		id := ecuIDOf(typeCluster(), uid)
		o := opened(provision(kmswire.SupplierSymmKey, "D", id, nil), initialMaster())
		Expect([]any{o.KeyID, o.AuthID, o.Flags.String()}).To(Equal([]any{she.Key10, she.MasterECUKey, "01111"}))
		for k := 4; k <= 0xC; k++ {
			o := opened(provision(kmswire.SecOCKey, strconv.FormatInt(int64(k), 16), id, nil), initialMaster())
			Expect([]any{o.UID, o.KeyID, o.AuthID, o.Flags.String()}).To(Equal([]any{uid, she.KeyID(k), she.MasterECUKey, "01111"}))
		}
	})

	It("allocates a greater counter for each update of a slot, and max(last+1, Counter) for SecOC keys", func() {
		id := ecuIDOf(typeCluster(), freshUID())
		var last uint32
		for range 3 {
			o := opened(provision(kmswire.EcuMasterKey, "1", id, nil), initialMaster())
			Expect(o.Counter).To(Equal(last + 1))
			last = o.Counter
		}
		Expect(opened(provision(kmswire.SecOCKey, "5", id, map[string]string{"Counter": "100"}), initialMaster()).Counter).To(BeEquivalentTo(100))
		Expect(opened(provision(kmswire.SecOCKey, "5", id, map[string]string{"Counter": "7"}), initialMaster()).Counter).To(BeEquivalentTo(101))
	})

	It("moves the authorizing master key on only when the master key's injection is reported Success", func() {
		uid := freshUID()
		id := ecuIDOf(typeCluster(), uid)
		first := opened(provision(kmswire.EcuMasterKey, "1", id, nil), initialMaster())
		By("a superseding POST: only the last issue counts")
		second := opened(provision(kmswire.EcuMasterKey, "1", id, nil), initialMaster())
		Expect(second.NewKey).NotTo(Equal(first.NewKey))
		opened(provision(kmswire.SupplierSymmKey, "D", id, nil), initialMaster())
		By("OperationFailed keeps the old master key")
		put(kmswire.PathProvisioning, kmswire.EcuMasterKey, "1", id, "OperationFailed")
		opened(provision(kmswire.SupplierSymmKey, "D", id, nil), initialMaster())
		By("Success makes the new one authorize what follows")
		third := opened(provision(kmswire.EcuMasterKey, "1", id, nil), initialMaster())
		put(kmswire.PathProvisioning, kmswire.EcuMasterKey, "1", id, "Success")
		opened(provision(kmswire.SupplierSymmKey, "D", id, nil), third.NewKey)
		next := opened(provision(kmswire.EcuMasterKey, "1", id, nil), third.NewKey)
		Expect(next.Counter).To(Equal(third.Counter + 1))
	})

	It("gives every ECU of one cluster the same SecOC key, and other clusters another", func() {
		cluster := typeCluster()
		a := opened(provision(kmswire.SecOCKey, "6", ecuIDOf(cluster, freshUID()), nil), initialMaster())
		b := opened(provision(kmswire.SecOCKey, "6", ecuIDOf(cluster, freshUID()), nil), initialMaster())
		c := opened(provision(kmswire.SecOCKey, "6", ecuIDOf(otherTypeCluster(cluster), freshUID()), nil), initialMaster())
		Expect(a.NewKey).To(Equal(b.NewKey))
		Expect(a.NewKey).NotTo(Equal(c.NewKey))
	})

	It("refuses a SecOC key for a cluster the EcuType's ECUs do not belong to, and issues it for one they do", func() {
		if len(confKeys.clusters) == 0 {
			notApplicable("kms.cluster_ids (CONF_CLUSTER_IDS), the SecOC clusters the EcuType's ECUs belong to, is not declared")
		}
		uid, outside := freshUID(), foreignCluster()
		status, env := api.send(http.MethodPost, kmswire.PathProvisioning, refusedRequest("4", ecuIDOf(outside, uid)))
		api.rec.keptContract(false) // a documented ResultReason: the contract's enumeration
		Expect(status).To(Equal(http.StatusOK), "a refusal is answered with HTTP 200")
		Expect(env.ResultStatus).To(Equal("OperationFailed"), "a SecOC key of ClusterID %X, which CONF_CLUSTER_IDS does not list", outside)
		Expect(env.ResultReason).NotTo(BeEmpty(), "a refusal names its ResultReason")
		Expect(env.Records).To(BeNil(), "a refusal carries no key")
		v := vectorByID("cluster-not-allowed-for-ecutype")
		want := strings.NewReplacer("1112131415161718", strings.ToUpper(hex.EncodeToString(outside[:])),
			"EcuType 0001", "EcuType "+strings.ToUpper(conf.EcuType)).Replace(v.Expect.ResultMessage)
		if env.ResultReason == v.Expect.ResultReason {
			Expect(env.ResultMessage).To(Equal(want), "the message of %s, to the character", v.Expect.ResultReason)
		} else {
			Expect(env.ResultMessage).NotTo(BeEmpty(), "a refusal carries a ResultMessage")
			observe("a SecOC key for a cluster the EcuType does not list: the KMS answered %s %q where the reference answers %s %q",
				env.ResultReason, env.ResultMessage, v.Expect.ResultReason, want)
		}
		By("the same request in a cluster of CONF_CLUSTER_IDS is served")
		inside := typeCluster()
		o := opened(provision(kmswire.SecOCKey, "4", ecuIDOf(inside, uid), nil), initialMaster())
		Expect([]any{o.UID, o.KeyID}).To(Equal([]any{uid, she.Key1}), "SecOC KeyID 4 is slot KEY_1")
	})

	It("answers a SecOC request's Challenge with KeySyncValue = CMAC(new key, Challenge)", func() {
		challenge := "00112233445566778899aabbccddeeff"
		rec := provision(kmswire.SecOCKey, "7", ecuIDOf(typeCluster(), freshUID()), map[string]string{"Challenge": challenge})
		o := opened(rec, initialMaster())
		msg, _ := hex.DecodeString(challenge)
		Expect(rec.KeySyncValue).To(Equal(cmacHex(o.NewKey[:], msg)))
	})

	It("syncs an injected key: a fresh Challenge each time, CMAC for MAC keys and the GET_ID MAC for the master key", func() {
		uid := freshUID()
		id := ecuIDOf(typeCluster(), uid)
		master := opened(provision(kmswire.EcuMasterKey, "1", id, nil), initialMaster())
		put(kmswire.PathProvisioning, kmswire.EcuMasterKey, "1", id, "Success")
		secoc := opened(provision(kmswire.SecOCKey, "8", id, nil), master.NewKey)
		put(kmswire.PathProvisioning, kmswire.SecOCKey, "8", id, "Success")

		seen := map[string]bool{}
		for range 2 {
			rec := api.ok(http.MethodPost, kmswire.PathKeySync, map[string]string{"ProvisioningType": "SecOCKey", "EcuID": id, "KeyID": "8"})
			Expect(rec.Challenge).To(MatchRegexp("^[0-9a-f]{32}$"))
			Expect(seen).NotTo(HaveKey(rec.Challenge), "the same Challenge twice")
			seen[rec.Challenge] = true
			c, _ := hex.DecodeString(rec.Challenge)
			Expect(rec.KeySyncValue).To(Equal(cmacHex(secoc.NewKey[:], c)))
		}
		put(kmswire.PathKeySync, kmswire.SecOCKey, "8", id, "Success")

		rec := api.ok(http.MethodPost, kmswire.PathKeySync, map[string]string{"ProvisioningType": "EcuMasterKey", "EcuID": id, "KeyID": "1"})
		c, _ := hex.DecodeString(rec.Challenge)
		Expect(rec.KeySyncValue).To(Equal(cmacHex(master.NewKey[:], append(append(c, uid[:]...), byte(syncSREG)))),
			"GET_ID MAC: CMAC(MASTER_ECU_KEY, challenge | UID | SREG 0x%02x)", byte(syncSREG))
		put(kmswire.PathKeySync, kmswire.EcuMasterKey, "1", id, "Success")
	})

	It("keeps its state across a restart: counters go on and the injected master key still authorizes", func() {
		id := ecuIDOf(typeCluster(), freshUID())
		master := opened(provision(kmswire.EcuMasterKey, "1", id, nil), initialMaster())
		put(kmswire.PathProvisioning, kmswire.EcuMasterKey, "1", id, "Success")
		secoc := opened(provision(kmswire.SecOCKey, "5", id, nil), master.NewKey)
		By("restarting the KMS")
		restartKMS()
		next := opened(provision(kmswire.EcuMasterKey, "1", id, nil), master.NewKey)
		Expect(next.Counter).To(BeNumerically(">", master.Counter), "the master key's counter after the restart")
		Expect(opened(provision(kmswire.SecOCKey, "5", id, nil), master.NewKey).Counter).To(BeNumerically(">", secoc.Counter),
			"the SecOC key's counter after the restart")
	})

	It("authorizes the updates after an OperationFailed master key with the old master key, with new greater counters", func() {
		id := ecuIDOf(typeCluster(), freshUID())
		old := opened(provision(kmswire.EcuMasterKey, "1", id, nil), initialMaster())
		put(kmswire.PathProvisioning, kmswire.EcuMasterKey, "1", id, "Success")
		failed := opened(provision(kmswire.EcuMasterKey, "1", id, nil), old.NewKey)
		put(kmswire.PathProvisioning, kmswire.EcuMasterKey, "1", id, "OperationFailed")
		for _, req := range []struct {
			typ   kmswire.ProvisioningType
			keyID string
		}{{kmswire.EcuMasterKey, "1"}, {kmswire.SecOCKey, "4"}} {
			rec := provision(req.typ, req.keyID, id, nil)
			o := opened(rec, old.NewKey) // M3 valid under the old master key
			m, _ := rec.Messages()
			Expect(she.OpenM1M3(failed.NewKey, m.M1, m.M2, m.M3).M3Valid).To(BeFalse(),
				"%s authorized by the master key whose injection failed", req.typ)
			if req.typ == kmswire.EcuMasterKey {
				Expect(o.Counter).To(BeNumerically(">", failed.Counter), "the counter after OperationFailed: never the failed one again")
			}
		}
	})

	It("refuses the KeyIDs the registry does not allow for an EcuType with KEYID_NOT_ALLOWED", func() {
		if conf.RefusedKeyIDs == "" || conf.RestrictedEcuType == "" {
			notApplicable("kms.restricted_ecu_type and kms.refused_key_ids (CONF_RESTRICTED_ECU_TYPE, CONF_REFUSED_KEY_IDS), an EcuType of the supplier and KeyIDs it refuses, are not declared")
		}
		v := vectorByID("keyid-not-allowed-for-ecutype")
		for _, k := range strings.Split(conf.RefusedKeyIDs, ",") {
			k = strings.ToUpper(strings.TrimSpace(k))
			uid := freshUID()
			typ, err := hex.DecodeString(conf.RestrictedEcuType)
			Expect(err == nil && len(typ) == 2).To(BeTrue(), "CONF_RESTRICTED_ECU_TYPE: want 4 hex digits")
			copy(uid[:2], typ)
			r := v
			r.Body = requestBody(refusedRequest(k, strings.ToUpper(ecuIDOf(typeCluster(), uid))))
			r.Expect.ResultMessage = strings.NewReplacer("KeyID:5", "KeyID:"+k, "EcuType 0001", "EcuType "+strings.ToUpper(conf.RestrictedEcuType)).
				Replace(v.Expect.ResultMessage)
			r.replay(api.rec, api.url, api.token, replayOptions{tolerate: true, strict: conf.Strict, answers: func() { api.rec.keptContract(true) }})
		}
	})

	Context("bearer authentication", func() {
		var secured *kmsAPI
		BeforeEach(func() {
			if targets.securedToken == "" {
				notApplicable("kms.token (CONF_KMS_TOKEN), the supplier's bearer token, is not declared")
			}
			secured = &kmsAPI{url: targets.securedKMSURL, token: targets.securedToken, rec: api.rec}
		})
		replay := func(v kmsErrorVector, token string) {
			v.replay(secured.rec, secured.url, token, replayOptions{tolerate: true, strict: conf.Strict,
				answers: func() { secured.rec.keptContract(true) }})
		}

		It("answers a request without a token with 401 UNAUTHORIZED", func() {
			v := vectorByID("unauthorized-no-token").forTarget()
			v.Token = ""
			replay(v, "")
		})

		It("answers a request with a wrong token with 401 UNAUTHORIZED", func() {
			v := vectorByID("unauthorized-wrong-token").forTarget()
			v.Token = ""
			replay(v, secured.token+"x")
		})

		It("refuses to act on an ECU whose UID carries another supplier's SupplierID with FORBIDDEN", func() {
			if conf.OtherSupplierID == "" || conf.OtherEcuType == "" {
				notApplicable("kms.other_supplier (CONF_OTHER_SUPPLIER_ID, CONF_OTHER_ECU_TYPE), another registered supplier, is not declared")
			}
			v := vectorByID("forbidden-other-suppliers-ecu")
			uid := freshUID()
			other, err := hex.DecodeString(conf.OtherEcuType + conf.OtherSupplierID)
			Expect(err == nil && len(other) == 4).To(BeTrue(), "CONF_OTHER_ECU_TYPE, CONF_OTHER_SUPPLIER_ID: want 4 hex digits each")
			copy(uid[:4], other)
			ecuID := strings.ToUpper(ecuIDOf(typeCluster(), uid))
			var vecBody map[string]string
			Expect(json.Unmarshal(v.Body, &vecBody)).To(Succeed())
			v.Expect.ResultMessage = strings.NewReplacer(vecBody["EcuID"], ecuID, "supplier 0001", "supplier "+strings.ToUpper(conf.SupplierID)).
				Replace(v.Expect.ResultMessage)
			vecBody["EcuID"] = ecuID
			v.Body = requestBody(vecBody)
			v.Token = ""
			replay(v, secured.token)
		})

		It("serves the configured supplier's own ECUs with its token", func() {
			o := opened(secured.ok(http.MethodPost, kmswire.PathProvisioning, map[string]string{
				"ProvisioningType": "SupplierSymmKey", "KeyID": "D", "EcuID": ecuIDOf(typeCluster(), freshUID())}), initialMaster())
			Expect(o.KeyID).To(Equal(she.Key10))
		})
	})

	Context("documented messages and codes", func() {
		f, err := vectors.Load("kms-errors.json")
		if err != nil {
			It("loads kms-errors.json", func() { harnessFail("%v", err) })
			return
		}
		for _, r := range f.Records {
			var v kmsErrorVector
			if err := r.Decode(&v); err != nil || v.Registry != "" || v.Auth != "" {
				continue // needs a registry or authentication of its own: the vectors suite runs it
			}
			It("answers "+r.ID+" with "+v.Expect.ResultReason+" as documented", func() {
				v.forTarget().ownerTolerated().replay(api.rec, api.url, api.token, replayOptions{tolerate: true, strict: conf.Strict,
					answers: func() { api.rec.keptContract(true) }})
			})
		}
	})
})

// vectorByID is the kms_error vector id of vectors/kms-errors.json.
func vectorByID(id string) kmsErrorVector {
	f, err := vectors.Load("kms-errors.json")
	if err != nil {
		harnessFail("%v", err)
	}
	for _, r := range f.Records {
		if r.ID == id {
			var v kmsErrorVector
			ExpectWithOffset(1, r.Decode(&v)).To(Succeed())
			return v
		}
	}
	harnessFail("kms-errors.json has no vector %s", id)
	return kmsErrorVector{}
}

// requestBody is a request body as a vector holds it.
func requestBody(fields map[string]string) json.RawMessage {
	b, err := json.Marshal(fields)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return b
}

// refusedRequest is a valid request for KeyID k (its type: the master key for 1, the supplier
// key for D, a SecOC key otherwise) of ecuID, with every field the document marks required.
func refusedRequest(k, ecuID string) map[string]string {
	body := map[string]string{"EcuID": ecuID, "KeyID": k}
	switch k {
	case "1":
		body["ProvisioningType"] = string(kmswire.EcuMasterKey)
	case "D":
		body["ProvisioningType"] = string(kmswire.SupplierSymmKey)
	default:
		body["ProvisioningType"] = string(kmswire.SecOCKey)
		body["SupplierSecretKey"], body["Counter"], body["Challenge"] = conf.SupplierKey, "1", hex.EncodeToString(randomBytes(16))
	}
	return body
}

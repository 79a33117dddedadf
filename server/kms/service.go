package kms

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/simulator/she"
)

// SyncSREG is the status register the KMS assumes when it computes a MASTER_ECU_KEY's
// KeySyncValue (a GET_ID MAC): an ECU that booted securely and finished its boot, SECURE_BOOT |
// BOOT_INIT | BOOT_FINISHED | BOOT_OK (0x1E). An ECU whose SREG differs (RND_INIT set, say) is
// still synced: the station reports its GET_ID answer and ReportSync checks the MAC over the SREG
// the ECU returned.
const SyncSREG = kmswire.SyncSREG

// Service is the KMS's business logic, independent of HTTP.
type Service struct {
	store Store
	roots map[Phase][16]byte
	log   *slog.Logger

	mu  sync.RWMutex
	reg *Registry
}

// NewService returns a KMS on store with the root keys of each phase and the registry.
func NewService(store Store, roots map[Phase][16]byte, reg *Registry, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, roots: roots, reg: reg, log: log}
}

// SetRegistry replaces the registry.
func (s *Service) SetRegistry(r *Registry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reg = r
}

// Registry returns the registry in use.
func (s *Service) Registry() *Registry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.reg
}

// Caller is who sends a request: a supplier when authentication is on, nobody (nil) when off.
type Caller struct {
	SupplierID uint16
}

func (c *Caller) actor() string {
	if c == nil {
		return "anonymous"
	}
	return fmt.Sprintf("supplier:%04X", c.SupplierID)
}

// The request bodies and Records are the contract's (openapi/kmswire), which every client uses.
type (
	// ProvisionRequest is the body of POST supplierKeyProvisioning.
	ProvisionRequest = kmswire.ProvisionRequest
	// ReportRequest is the body of PUT supplierKeyProvisioning and PUT supplierKeySyncValue.
	ReportRequest = kmswire.ReportRequest
	// SyncRequest is the body of POST supplierKeySyncValue.
	SyncRequest = kmswire.SyncRequest
	// Records is the Records object of a successful answer.
	Records = kmswire.Records
)

// target is a request's validated subject.
type target struct {
	typ     ProvisioningType
	ecu     EcuID
	keyID   she.KeyID
	ecuType *EcuType
	sup     *Supplier
}

// keyIDText writes a KeyID the way the document does: one uppercase hex digit.
func keyIDText(id she.KeyID) string { return strings.ToUpper(strconv.FormatUint(uint64(id), 16)) }

// parseKeyID reads the KeyID field: hexadecimal, at most D.
func parseKeyID(s string) (she.KeyID, *Error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fail("KEYID_PARSE", s)
	}
	if v > 0xD {
		return 0, fail("KEYID_RANGE")
	}
	return she.KeyID(v), nil
}

// resolve validates the fields every request shares, in this order: ProvisioningType, EcuID,
// KeyID (implied for EcuMasterKey and SupplierSymmKey when keyOptional), the type's KeyID rule,
// the registry (SupplierID, EcuType, KeyID allowed, for SecOCKey the ClusterID allowed), and the
// caller's right to the ECU.
func (s *Service) resolve(caller *Caller, typ, ecuID, keyID string, keyOptional bool) (*target, *Error) {
	if typ == "" {
		return nil, fail("FIELD_REQUIRED", "ProvisioningType")
	}
	t := &target{}
	var ok bool
	if t.typ, ok = provisioningTypes[typ]; !ok {
		return nil, fail("PROVISIONING_TYPE_INVALID", typ)
	}
	if ecuID == "" {
		return nil, fail("FIELD_REQUIRED", "EcuID")
	}
	if t.ecu, ok = ParseEcuID(ecuID); !ok {
		return nil, fail("ECUID_FORMAT", ecuID)
	}
	switch {
	case keyID == "" && keyOptional && t.typ == EcuMasterKey:
		t.keyID = she.MasterECUKey
	case keyID == "" && keyOptional && t.typ == SupplierSymmKey:
		t.keyID = she.Key10
	case keyID == "":
		return nil, fail("FIELD_REQUIRED", "KeyID")
	default:
		var e *Error
		if t.keyID, e = parseKeyID(keyID); e != nil {
			return nil, e
		}
	}
	switch {
	case t.typ == EcuMasterKey && t.keyID != she.MasterECUKey:
		return nil, fail("KEYID_NOT_FOR_TYPE", t.typ, "1(0x01)")
	case t.typ == SupplierSymmKey && t.keyID != she.Key10:
		return nil, fail("KEYID_NOT_FOR_TYPE", t.typ, "D(0x0D)")
	case t.typ == SecOCKey && (t.keyID < 0x4 || t.keyID > 0xC):
		return nil, fail("KEYID_NOT_FOR_TYPE", t.typ, "between 4(0x04) and C(0x0C)")
	}
	reg := s.Registry()
	if t.sup = reg.Suppliers[t.ecu.SupplierID()]; t.sup == nil {
		return nil, fail("NOT_REGISTERED", "SupplierID")
	}
	if t.ecuType = reg.EcuTypes[[2]uint16{t.ecu.SupplierID(), t.ecu.EcuType()}]; t.ecuType == nil {
		return nil, fail("NOT_REGISTERED", "EcuType")
	}
	if !t.ecuType.AllowedKeyIDs[t.keyID] {
		return nil, fail("KEYID_NOT_ALLOWED", keyIDText(t.keyID), fmt.Sprintf("%04X", t.ecu.EcuType()))
	}
	if t.typ == SecOCKey && !t.ecuType.AllowsCluster(t.ecu.ClusterID) {
		return nil, fail("CLUSTER_NOT_ALLOWED", strings.ToUpper(hex.EncodeToString(t.ecu.ClusterID[:])), fmt.Sprintf("%04X", t.ecu.EcuType()))
	}
	if caller != nil && caller.SupplierID != t.ecu.SupplierID() {
		return nil, fail("FORBIDDEN", ecuID, fmt.Sprintf("%04X", caller.SupplierID))
	}
	return t, nil
}

// internal logs err and returns the refusal for an internal failure.
func (s *Service) internal(op string, err error) *Error {
	s.log.Error("kms: internal error", "op", op, "err", err)
	return fail("INTERNAL")
}

// clusterGeneration is the key generation of every SecOC cluster: the API has no way to rotate a
// cluster's keys, so there is only the first.
const clusterGeneration = 1

// key derives the key of type typ for a slot: ECU keys from the UID and the counter they were
// issued with, SecOC keys from the ClusterID and the cluster's generation.
func (s *Service) key(phase Phase, typ ProvisioningType, ecu EcuID, keyID she.KeyID, counter uint32) [16]byte {
	subject, generation := ecu.UID[:], counter
	if typ == SecOCKey {
		subject, generation = ecu.ClusterID[:], clusterGeneration
	}
	return DeriveKey(s.roots[phase], string(typ), keyContext(subject, keyID, generation))
}

// masterKey is the MASTER_ECU_KEY the KMS believes the ECU holds: the last one injected, or the
// EcuType's initial key.
func (s *Service) masterKey(t *target, master SlotState) [16]byte {
	if master.Injected == nil {
		return t.ecuType.InitialMasterKey
	}
	return s.key(master.Injected.Phase, EcuMasterKey, t.ecu, she.MasterECUKey, master.Injected.Counter)
}

// slotKey is the key the KMS believes is in the target's slot (false when none was injected).
func (s *Service) slotKey(t *target, st SlotState) ([16]byte, bool) {
	if st.Injected == nil {
		return [16]byte{}, false
	}
	return s.key(st.Injected.Phase, t.typ, t.ecu, t.keyID, st.Injected.Counter), true
}

// Provision is POST supplierKeyProvisioning: it allocates the slot's next counter, commits it, and
// answers M1-M5 for the new key, authorized by the MASTER_ECU_KEY the KMS believes the ECU holds.
func (s *Service) Provision(ctx context.Context, caller *Caller, req ProvisionRequest) (*Records, *Error) {
	t, e := s.resolve(caller, req.ProvisioningType, req.EcuID, req.KeyID, false)
	if e != nil {
		return nil, e
	}
	var minCounter uint32
	var challenge []byte
	if t.typ == SecOCKey {
		if req.SupplierSecretKey == "" {
			return nil, fail("FIELD_REQUIRED", "SupplierSecretKey")
		}
		given, err := hex.DecodeString(req.SupplierSecretKey)
		if err != nil || len(given) != 16 || subtle.ConstantTimeCompare(given, t.sup.SecretKey[:]) != 1 {
			return nil, fail("SECRET_NOT_REGISTERED", req.SupplierSecretKey)
		}
		if req.Counter != "" {
			c, err := strconv.ParseUint(req.Counter, 10, 64)
			if err != nil {
				return nil, fail("COUNTER_PARSE", req.Counter)
			}
			if c > she.MaxCounter {
				return nil, fail("COUNTER_EXHAUSTED")
			}
			minCounter = uint32(c)
		}
	}
	if req.Challenge != "" {
		var err error
		if challenge, err = hex.DecodeString(req.Challenge); err != nil || len(challenge) != 16 {
			return nil, fail("CHALLENGE_FORMAT", req.Challenge)
		}
	}
	phase := t.sup.Phase
	if req.Phase != "" {
		if req.Phase != string(Prod) && req.Phase != string(Dev) {
			return nil, fail("PHASE_INVALID", req.Phase)
		}
		phase = Phase(req.Phase)
	}
	if !t.sup.AllowsPhase(phase) {
		return nil, fail("PHASE_NOT_ALLOWED", phase, fmt.Sprintf("%04X", t.sup.ID))
	}
	counter, master, err := s.store.Issue(ctx, Issue{Slot: Slot{t.ecu.UID, t.keyID}, Type: t.typ, Phase: phase}, minCounter, caller.actor())
	switch {
	case errors.Is(err, ErrCounterExhausted):
		return nil, fail("COUNTER_EXHAUSTED")
	case err != nil:
		return nil, s.internal("issue", err)
	}
	newKey := s.key(phase, t.typ, t.ecu, t.keyID, counter)
	m, err := she.BuildMessages(she.KeyUpdate{UID: t.ecu.UID, KeyID: t.keyID, AuthID: she.MasterECUKey,
		AuthKey: s.masterKey(t, master), NewKey: newKey, Counter: counter, Flags: t.ecuType.Flags[t.typ]})
	if err != nil {
		return nil, s.internal("build messages", err)
	}
	rec := &Records{KeyID: keyIDText(t.keyID)}
	rec.M1, rec.M2, rec.M3, rec.M4, rec.M5 = hexStrings(m.M1[:], m.M2[:], m.M3[:], m.M4[:], m.M5[:])
	if challenge != nil {
		v := she.CMAC(newKey, challenge)
		rec.KeySyncValue = hex.EncodeToString(v[:])
	}
	return rec, nil
}

// hexStrings returns M1-M5 in lowercase hexadecimal, cut from one string.
func hexStrings(m1, m2, m3, m4, m5 []byte) (string, string, string, string, string) {
	var raw [16 + 32 + 16 + 32 + 16]byte
	n1 := copy(raw[:], m1)
	n2 := n1 + copy(raw[n1:], m2)
	n3 := n2 + copy(raw[n2:], m3)
	n4 := n3 + copy(raw[n3:], m4)
	n5 := n4 + copy(raw[n4:], m5)
	h := hex.EncodeToString(raw[:n5])
	return h[:2*n1], h[2*n1 : 2*n2], h[2*n2 : 2*n3], h[2*n3 : 2*n4], h[2*n4 : 2*n5]
}

// parseOutcome reads ResultStatus.
func parseOutcome(status string) (bool, *Error) {
	switch status {
	case "":
		return false, fail("FIELD_REQUIRED", "ResultStatus")
	case "Success":
		return true, nil
	case "OperationFailed":
		return false, nil
	}
	return false, fail("RESULT_STATUS_INVALID", status)
}

// Report is PUT supplierKeyProvisioning: the outcome of the slot's pending issue. On Success the
// issued key becomes the one the KMS believes is in the slot (for the master key: the one it
// authorizes further updates with).
func (s *Service) Report(ctx context.Context, caller *Caller, req ReportRequest) *Error {
	return s.report(ctx, caller, req, s.store.Report, "", nil)
}

// report validates a PUT and records its outcome with record; what names the reported thing in
// the NOTHING_ISSUED message ("" for the key itself).
func (s *Service) report(ctx context.Context, caller *Caller, req ReportRequest,
	record func(ctx context.Context, slot Slot, success bool, message, actor string) error, what string,
	check func(ctx context.Context, t *target, req ReportRequest) *Error) *Error {
	t, e := s.resolve(caller, req.ProvisioningType, req.EcuID, req.KeyID, true)
	if e != nil {
		return e
	}
	success, e := parseOutcome(req.ResultStatus)
	if e != nil {
		return e
	}
	if success && check != nil {
		if e := check(ctx, t, req); e != nil {
			return e
		}
	}
	err := record(ctx, Slot{t.ecu.UID, t.keyID}, success, req.ResultMessage, caller.actor())
	switch {
	case errors.Is(err, ErrNothingIssued):
		return fail("NOTHING_ISSUED", what+string(t.typ), keyIDText(t.keyID))
	case err != nil:
		return s.internal("report", err)
	}
	return nil
}

// Sync is POST supplierKeySyncValue: a fresh challenge and the KeySyncValue the key the KMS
// believes is in the slot gives for it: AES-CMAC(key, challenge) for MAC keys (the station checks
// it with VerifyMAC), the GET_ID MAC with SREG = SyncSREG for the master key.
func (s *Service) Sync(ctx context.Context, caller *Caller, req SyncRequest) (*Records, *Error) {
	t, e := s.resolve(caller, req.ProvisioningType, req.EcuID, req.KeyID, true)
	if e != nil {
		return nil, e
	}
	slot := Slot{t.ecu.UID, t.keyID}
	st, err := s.store.SlotState(ctx, slot)
	if err != nil {
		return nil, s.internal("slot state", err)
	}
	key, ok := s.slotKey(t, st)
	if !ok {
		return nil, fail("NOT_INJECTED", t.typ, keyIDText(t.keyID))
	}
	var challenge [16]byte
	rand.Read(challenge[:])
	var value [16]byte
	if t.typ == EcuMasterKey {
		value = she.GetIDMAC(key, challenge, t.ecu.UID, SyncSREG)
	} else {
		value = she.CMAC(key, challenge[:])
	}
	if err := s.store.IssueSync(ctx, slot, caller.actor()); err != nil {
		return nil, s.internal("issue sync", err)
	}
	return &Records{KeyID: keyIDText(t.keyID), KeySyncValue: hex.EncodeToString(value[:]),
		Challenge: hex.EncodeToString(challenge[:])}, nil
}

// ReportSync is PUT supplierKeySyncValue: the outcome of the station's check. A master key's
// Success that carries the ECU's GET_ID answer (kmswire.GetIDAnswer) is checked first: the MAC
// over the SREG the ECU returned must be the one the key the KMS believes is in the slot gives,
// else the report is refused (KEYSYNC_MISMATCH) and nothing is recorded.
func (s *Service) ReportSync(ctx context.Context, caller *Caller, req ReportRequest) *Error {
	return s.report(ctx, caller, req, s.store.ReportSync, "KeySyncValue for ", s.checkGetIDAnswer)
}

// checkGetIDAnswer checks the GET_ID answer a master key's sync report carries, if it carries
// one. A slot with no injected key is left to the store (nothing was issued for it).
func (s *Service) checkGetIDAnswer(ctx context.Context, t *target, req ReportRequest) *Error {
	answer, ok := kmswire.ParseGetIDAnswer(req.ResultMessage)
	if !ok || t.typ != EcuMasterKey {
		return nil
	}
	st, err := s.store.SlotState(ctx, Slot{t.ecu.UID, t.keyID})
	if err != nil {
		return s.internal("slot state", err)
	}
	key, ok := s.slotKey(t, st)
	if !ok {
		return nil
	}
	want := she.GetIDMAC(key, answer.Challenge, t.ecu.UID, answer.SREG)
	if subtle.ConstantTimeCompare(want[:], answer.MAC[:]) != 1 {
		return fail("KEYSYNC_MISMATCH", string(t.typ), keyIDText(t.keyID))
	}
	return nil
}

// Package kmswire is the client side of the KMS supplier API (openapi/kms.yaml): the paths, the
// request bodies, the answer's envelope and Records, and the EcuID convention, as a station or a
// test speaks them. It depends on no server: a client of any KMS, the reference or another, uses
// these types.
package kmswire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/shekit/shekit/simulator/she"
)

// The API's paths.
const (
	PathProvisioning = "/app/automotive/supplierKeyProvisioning"
	PathKeySync      = "/app/automotive/supplierKeySyncValue"
)

// ProvisioningType is the kind of key a request is about.
type ProvisioningType string

// The provisioning types, as the API spells them (the document's "SecOckKey" is a typo).
const (
	EcuMasterKey    ProvisioningType = "EcuMasterKey"
	SupplierSymmKey ProvisioningType = "SupplierSymmKey"
	SecOCKey        ProvisioningType = "SecOCKey"
)

// ProvisionRequest is the body of POST supplierKeyProvisioning.
type ProvisionRequest struct {
	ProvisioningType  string
	EcuID             string
	KeyID             string
	SupplierSecretKey string `json:",omitempty"`
	Counter           string `json:",omitempty"`
	Challenge         string `json:",omitempty"`
	Phase             string `json:",omitempty"`
}

// ReportRequest is the body of PUT supplierKeyProvisioning and PUT supplierKeySyncValue.
type ReportRequest struct {
	ProvisioningType string
	EcuID            string
	KeyID            string `json:",omitempty"` // SecOCKey only
	ResultStatus     string
	ResultMessage    string
}

// SyncRequest is the body of POST supplierKeySyncValue.
type SyncRequest struct {
	ProvisioningType string
	EcuID            string
	KeyID            string
}

// Envelope is every answer's frame. Fields the client does not know are ignored.
type Envelope struct {
	ResultStatus  string   `json:"ResultStatus"`
	ResultReason  string   `json:"ResultReason"`
	ResultMessage string   `json:"ResultMessage"`
	Records       *Records `json:"Records,omitempty"`
}

// Records is the Records object of a successful answer. The document's own examples leave KeyID
// out (SupplierSymmKey) or empty (supplierKeySyncValue): a client must not rely on it.
type Records struct {
	KeyID        string `json:"KeyID"`
	M1           string `json:"M1,omitempty"`
	M2           string `json:"M2,omitempty"`
	M3           string `json:"M3,omitempty"`
	M4           string `json:"M4,omitempty"`
	M5           string `json:"M5,omitempty"`
	KeySyncValue string `json:"KeySyncValue,omitempty"`
	Challenge    string `json:"Challenge,omitempty"`
}

// Messages decodes M1–M5, which must be hexadecimal of their exact sizes.
func (r Records) Messages() (she.Messages, error) {
	var m she.Messages
	for _, f := range []struct {
		name, hex string
		dst       []byte
	}{{"M1", r.M1, m.M1[:]}, {"M2", r.M2, m.M2[:]}, {"M3", r.M3, m.M3[:]}, {"M4", r.M4, m.M4[:]}, {"M5", r.M5, m.M5[:]}} {
		b, err := hex.DecodeString(f.hex)
		if err != nil || len(b) != len(f.dst) {
			return m, fmt.Errorf("%s is not %d hex digits: %q", f.name, 2*len(f.dst), f.hex)
		}
		copy(f.dst, b)
	}
	return m, nil
}

// EcuID is what the API's EcuID carries (54 hex characters, the kit's convention): the SecOC
// cluster the ECU belongs to (8 bytes), its model (4 bytes) and its SHE UID (15 bytes), which
// starts with the EcuType (2 bytes) and the SupplierID (2 bytes).
type EcuID struct {
	ClusterID [8]byte
	Model     [4]byte
	UID       she.UID
}

// ParseEcuID reads 54 hexadecimal characters, in either case.
func ParseEcuID(s string) (EcuID, bool) {
	var id EcuID
	if len(s) != 54 {
		return id, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, false
	}
	copy(id.ClusterID[:], b[:8])
	copy(id.Model[:], b[8:12])
	copy(id.UID[:], b[12:])
	return id, true
}

// EcuType is the first two bytes of the UID.
func (id EcuID) EcuType() uint16 { return binary.BigEndian.Uint16(id.UID[:2]) }

// SupplierID is the third and fourth bytes of the UID.
func (id EcuID) SupplierID() uint16 { return binary.BigEndian.Uint16(id.UID[2:4]) }

// String writes the EcuID as 54 lowercase hex characters.
func (id EcuID) String() string {
	return hex.EncodeToString(id.ClusterID[:]) + hex.EncodeToString(id.Model[:]) + id.UID.String()
}

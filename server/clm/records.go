package clm

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"

	"github.com/shekit/shekit/server/kek"
)

// The kinds of stored objects.
const (
	kindID     = "id"
	kindDevice = "device"
	kindCert   = "cert"
	kindKey    = "key"
	kindCA     = "ca"
	// kindRevoked indexes the revoked certificates: ID the serial (hex), Value the revocation
	// time (Unix milliseconds, decimal); not sealed (the CRL publishes both).
	kindRevoked = "revoked"
	// kindCRL is the current CRL (DER), ID ca1; not sealed (it is public).
	kindCRL = "crl"
)

// Record statuses.
const (
	statusValid   = "valid"
	statusRevoked = "revoked"
	statusUpdated = "updated"
)

// idRecord is an ID/password (pre-shared key).
type idRecord struct {
	KeyID      string `json:"keyid"`
	Alias      string `json:"alias"`
	TenantID   string `json:"tenantid"`
	Password   string `json:"password"` // which IDInfo GET answers and authentication compares (the record is sealed)
	Expiration int64  `json:"expiration"`
	Status     string `json:"status"`
}

// deviceRecord is a device registered by its first certificate or key request.
type deviceRecord struct {
	DeviceID   string            `json:"deviceid"`
	Name       string            `json:"devicename"`
	KeyHash    []byte            `json:"keyhash"` // SHA-256 of the random device key
	IPAddress  string            `json:"ipaddress,omitempty"`
	MACAddress string            `json:"macaddress,omitempty"`
	Ext        map[string]string `json:"ext_data,omitempty"`
	Status     string            `json:"status"`
	Expiration int64             `json:"expiration"`
}

// certRecord is an issued certificate with its private key.
type certRecord struct {
	KeyNumber  int64  `json:"keynumber"`
	Serial     string `json:"serial"`
	DeviceID   string `json:"deviceid"`
	Subject    string `json:"subject"`
	DER        []byte `json:"der"`
	KeyPKCS8   []byte `json:"key"`
	Format     string `json:"format"`               // pem, der, p12: as issued
	Passphrase string `json:"passphrase,omitempty"` // for PKCS#12
	FilePath   string `json:"filepath,omitempty"`
	NotAfter   int64  `json:"notafter"`
	Status     string `json:"status"`
	RevokedAt  int64  `json:"revokedat,omitempty"`
}

// keyRecord is a symmetric key.
type keyRecord struct {
	KeyNumber  int64  `json:"keynumber"`
	DeviceID   string `json:"deviceid"`
	Alias      string `json:"alias"`
	KeyType    string `json:"keytype"`
	Value      []byte `json:"value"`
	FilePath   string `json:"filepath,omitempty"`
	Expiration int64  `json:"expiration"`
	Status     string `json:"status"`
}

// sealer seals records under the KEK, bound to their kind and ID.
type sealer struct{ k *kek.KEK }

func (s sealer) seal(kind, id string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return s.k.Seal("clm:"+kind+":"+id, data), nil
}

func (s sealer) open(o Object, v any) error {
	data, err := s.k.Open("clm:"+o.Kind+":"+o.ID, o.Value)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// passwordMatches reports, in constant time, whether key is the ID's password. It compares
// SHA-256 digests, so that not even the length of a wrong key shows.
func passwordMatches(rec *idRecord, key string) bool {
	want, got := sha256.Sum256([]byte(rec.Password)), sha256.Sum256([]byte(key))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

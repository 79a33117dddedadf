package clm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"sync"

	"golang.org/x/crypto/scrypt"

	"github.com/shekit/shekit/server/kek"
)

// The kinds of stored objects.
const (
	kindID     = "id"
	kindDevice = "device"
	kindCert   = "cert"
	kindKey    = "key"
	kindCA     = "ca"
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
	Salt       []byte `json:"salt"`
	Hash       []byte `json:"hash"`     // scrypt of the password, for checking it
	Password   string `json:"password"` // the password itself, which IDInfo GET answers (the record is sealed)
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

// scrypt parameters for password hashes (N = 2^15, r = 8, p = 1, 32 bytes).
const (
	scryptN      = 1 << 15
	scryptR      = 8
	scryptP      = 1
	scryptKeyLen = 32
)

func hashPassword(password string, salt []byte) []byte {
	h, _ := scrypt.Key([]byte(password), salt, scryptN, scryptR, scryptP, scryptKeyLen)
	return h
}

// verifier checks passwords against their scrypt hashes. A password once verified is
// remembered as an HMAC under a key of this process, so that a device authenticating on every
// request costs one scrypt, not one per request; deleting an ID forgets it.
type verifier struct {
	mac     []byte
	mu      sync.RWMutex
	good    map[string][]byte      // keyid → HMAC(password)
	pending map[string]*sync.Mutex // keyid → held while one scrypt for it runs
}

func newVerifier() *verifier {
	k := make([]byte, 32)
	rand.Read(k)
	return &verifier{mac: k, good: map[string][]byte{}, pending: map[string]*sync.Mutex{}}
}

func (v *verifier) digest(password string) []byte {
	m := hmac.New(sha256.New, v.mac)
	m.Write([]byte(password))
	return m.Sum(nil)
}

// check reports, in constant time, whether password is the ID's. Requests for one ID that arrive
// together wait for one scrypt rather than run one each.
func (v *verifier) check(rec *idRecord, password string) bool {
	d := v.digest(password)
	if known, ok := v.known(rec.KeyID); ok {
		return hmac.Equal(known, d)
	}
	v.mu.Lock()
	m, ok := v.pending[rec.KeyID]
	if !ok {
		m = new(sync.Mutex)
		v.pending[rec.KeyID] = m
	}
	v.mu.Unlock()
	m.Lock()
	defer m.Unlock()
	if known, ok := v.known(rec.KeyID); ok {
		return hmac.Equal(known, d)
	}
	if subtle.ConstantTimeCompare(hashPassword(password, rec.Salt), rec.Hash) != 1 {
		return false
	}
	v.mu.Lock()
	v.good[rec.KeyID] = d
	v.mu.Unlock()
	return true
}

func (v *verifier) known(keyid string) ([]byte, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	k, ok := v.good[keyid]
	return k, ok
}

func (v *verifier) forget(keyid string) {
	v.mu.Lock()
	delete(v.good, keyid)
	v.mu.Unlock()
}

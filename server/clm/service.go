package clm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/shekit/shekit/server/kek"
)

// Config is the CLM's configuration.
type Config struct {
	License       string        // the license key (HTTP Basic password of user secureware-clm)
	KeyAlgorithm  string        // client key pairs: "rsa" (RSA-2048, the default) or "ecdsa" (P-256)
	CAAlgorithm   string        // the CA's key pair, made on the first start (default: KeyAlgorithm)
	PoolSize      int           // RSA keys generated ahead (default 16)
	PasswordBytes int           // random bytes of a generated password (default 12, base64 encoded)
	CertValidity  time.Duration // default one year
	IDValidity    time.Duration // default 100 years
	KeyValidity   time.Duration // default 100 years
	IDPage        int           // IDs read from the store at a time by GET IDInfo (default 256)
	Now           func() time.Time
}

func (c *Config) defaults() {
	if c.KeyAlgorithm == "" {
		c.KeyAlgorithm = "rsa"
	}
	if c.CAAlgorithm == "" {
		c.CAAlgorithm = c.KeyAlgorithm
	}
	if c.PoolSize == 0 {
		c.PoolSize = 16
	}
	if c.PasswordBytes == 0 {
		c.PasswordBytes = 12
	}
	if c.CertValidity == 0 {
		c.CertValidity = 365 * 24 * time.Hour
	}
	if c.IDValidity == 0 {
		c.IDValidity = 100 * 365 * 24 * time.Hour
	}
	if c.KeyValidity == 0 {
		c.KeyValidity = 100 * 365 * 24 * time.Hour
	}
	if c.IDPage <= 0 {
		c.IDPage = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is the CLM.
type Service struct {
	st   Store
	seal sealer
	cfg  Config
	keys *keyGen
	ca   *authority
	log  *slog.Logger

	crlMu sync.Mutex
	crl   crlCache
}

// New opens the CLM on st, creating its CA on the first start.
func New(ctx context.Context, st Store, k *kek.KEK, cfg Config, log *slog.Logger) (*Service, error) {
	cfg.defaults()
	for _, a := range []string{cfg.KeyAlgorithm, cfg.CAAlgorithm} {
		if a != "rsa" && a != "ecdsa" {
			return nil, errors.New("clm: key algorithms must be rsa or ecdsa")
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: st, seal: sealer{k}, cfg: cfg, keys: newKeyGen(cfg.KeyAlgorithm, cfg.PoolSize, 2, log), log: log}
	ca, err := s.loadCA(ctx)
	if err != nil {
		s.keys.close()
		return nil, err
	}
	s.ca = ca
	if err := s.ensureCRL(ctx); err != nil {
		s.keys.close()
		return nil, err
	}
	return s, nil
}

// Close stops the key generators.
func (s *Service) Close() { s.keys.close() }

// WarmUp starts filling the RSA key pool now rather than at the first request for a key pair.
func (s *Service) WarmUp() { s.keys.startPool() }

// PooledKeys returns how many RSA keys wait, generated ahead.
func (s *Service) PooledKeys() int { return s.keys.ready() }

func (s *Service) nowMillis() int64 { return s.cfg.Now().UnixMilli() }

// internal logs err and returns errorcode 1602 (database access) or the code it carries.
func (s *Service) internal(op string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	s.log.Error("clm: internal error", "op", op, "err", err)
	return fail(codeDBAccess, "%s: %v", op, err)
}

// randomText returns n random bytes, base64 encoded.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// authenticate checks keyid and key (ID/password authentication, table 1-1 of the document):
// one read of the ID, outside any transaction (a change through the ID then holds it).
func (s *Service) authenticate(ctx context.Context, keyid, key string) (*idRecord, *Error) {
	o, found, err := s.st.Lookup(ctx, kindID, keyid)
	if err != nil {
		return nil, s.internal("read id", err)
	}
	return s.checkID(o, found, keyid, key)
}

// authorize is authenticate inside tx: the ID is read and held until tx ends (as device holds
// it), so that a request that makes no key pair needs no read of its own before its transaction.
func (s *Service) authorize(tx Tx, keyid, key string) (*idRecord, error) {
	o, found, err := tx.Hold(kindID, keyid)
	if err != nil {
		return nil, err
	}
	rec, e := s.checkID(o, found, keyid, key)
	if e != nil {
		return nil, e
	}
	return rec, nil
}

// checkID checks the ID read for keyid (o, if found) against the password key.
func (s *Service) checkID(o Object, found bool, keyid, key string) (*idRecord, *Error) {
	var rec idRecord
	if found {
		if err := s.seal.open(o, &rec); err != nil {
			return nil, fail(codeDecryption, "id %s: %v", keyid, err)
		}
	}
	switch {
	case !found:
		return nil, fail(codeIDNotFound, "keyid %q", keyid)
	case rec.Status != statusValid:
		return nil, fail(codeIDStatus, "keyid %q", keyid)
	case rec.Expiration <= s.nowMillis():
		return nil, fail(codeIDExpired, "keyid %q", keyid)
	case !passwordMatches(&rec, key):
		return nil, fail(codePassword, "keyid %q", keyid)
	}
	return &rec, nil
}

// deviceRequest is what a request says about its device.
type deviceRequest struct {
	id, name, key, ip, mac string
	ext                    map[string]string
}

// device finds the request's device among the owner's, or registers it when the request names
// no deviceid and register is set. It returns the device and, for a new one, its device key.
// The owner's ID is held first (a change of its certificates or keys and its delete never
// interleave: the delete waits for the changes under way, a change after it finds no ID, 1204).
func (s *Service) device(tx Tx, owner string, d deviceRequest, register bool) (*deviceRecord, string, error) {
	if _, ok, err := tx.Hold(kindID, owner); err != nil {
		return nil, "", err
	} else if !ok {
		return nil, "", fail(codeIDNotFound, "keyid %q (deleted)", owner)
	}
	return s.heldDevice(tx, owner, d, register)
}

// heldDevice is device for an owner that tx already holds (authorize).
func (s *Service) heldDevice(tx Tx, owner string, d deviceRequest, register bool) (*deviceRecord, string, error) {
	if d.id == "" {
		if !register {
			return nil, "", fail(codeRequired, "deviceid")
		}
		if _, taken, err := tx.ByAlt(kindDevice, deviceAlt(owner, d.name)); err != nil {
			return nil, "", err
		} else if taken {
			return nil, "", fail(codeDeviceName, "device name %q", d.name)
		}
		rec := &deviceRecord{DeviceID: newDeviceID(), Name: d.name, IPAddress: d.ip, MACAddress: d.mac, Ext: d.ext,
			Status: statusValid, Expiration: s.cfg.Now().Add(s.cfg.IDValidity).UnixMilli()}
		key := make([]byte, 16)
		rand.Read(key)
		sum := sha256.Sum256([]byte(hex.EncodeToString(key)))
		rec.KeyHash = sum[:]
		if err := s.putDevice(tx, owner, rec); errors.Is(err, ErrNameTaken) {
			// registered meanwhile by a change that committed first
			return nil, "", fail(codeDeviceName, "device name %q", d.name)
		} else if err != nil {
			return nil, "", err
		}
		if err := audit(tx, owner, "device-register", rec.DeviceID, 0, ""); err != nil {
			return nil, "", err
		}
		return rec, hex.EncodeToString(key), nil
	}
	o, ok, err := tx.Get(kindDevice, d.id)
	if err != nil {
		return nil, "", err
	}
	if !ok || o.Owner != owner {
		return nil, "", fail(codeDeviceNotFound, "deviceid %q", d.id)
	}
	var rec deviceRecord
	if err := s.seal.open(o, &rec); err != nil {
		return nil, "", fail(codeDecryption, "device %q: %v", d.id, err)
	}
	switch {
	case d.name != "" && d.name != rec.Name:
		return nil, "", fail(codeDeviceID, "deviceid %q is registered with another name", d.id)
	case d.key != "" && !deviceKeyMatches(&rec, d.key):
		return nil, "", fail(codeDeviceKey, "deviceid %q", d.id)
	case rec.Status != statusValid:
		return nil, "", fail(codeDeviceStatus, "deviceid %q", d.id)
	case rec.Expiration <= s.nowMillis():
		return nil, "", fail(codeDeviceExpired, "deviceid %q", d.id)
	}
	return &rec, "", nil
}

// audit appends an entry for a change made through keyid.
func audit(tx Tx, keyid, action, device string, number int64, message string) error {
	return tx.Audit(AuditEntry{Actor: "clm:" + keyid, Action: "clm:" + action, Device: device, Number: number, Message: message})
}

func deviceKeyMatches(rec *deviceRecord, key string) bool {
	sum := sha256.Sum256([]byte(key))
	return subtle.ConstantTimeCompare(sum[:], rec.KeyHash) == 1
}

func (s *Service) putDevice(tx Tx, owner string, rec *deviceRecord) error {
	sealed, err := s.seal.seal(kindDevice, rec.DeviceID, rec)
	if err != nil {
		return err
	}
	return tx.Put(Object{Kind: kindDevice, ID: rec.DeviceID, Alt: deviceAlt(owner, rec.Name), Owner: owner, Value: sealed})
}

// deviceAlt is what finds a device by its owner and name: "0000000001/name" (unambiguous, since
// a keyid is ten digits; text that any database's text column holds).
func deviceAlt(owner, name string) string { return owner + "/" + name }

// newDeviceID returns 36 random characters of [0-9a-z], the length of the document's example.
func newDeviceID() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	id := make([]byte, 0, 36)
	var buf [64]byte
	for len(id) < cap(id) {
		rand.Read(buf[:])
		for _, c := range buf {
			// 252 = 7 × 36: bytes above it are dropped, so every character is equally likely.
			if c < 252 && len(id) < cap(id) {
				id = append(id, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(id)
}

// systemStatus is GET SystemStatus: 1601 when the store does not answer.
func (s *Service) systemStatus(ctx context.Context, _ request) (answer, *Error) {
	if err := s.st.Ping(ctx); err != nil {
		return nil, fail(codeDBConnection, "%v", err)
	}
	return answer{}, nil
}

package clm

import (
	"context"
	"crypto/x509"
	"errors"
	"time"
)

// The operator's view of the CLM's objects (the web console's): what each is, never a
// password, a device key, a private key, a passphrase or a symmetric key's value.

// IDView is an ID (pre-shared key) without its password.
type IDView struct {
	KeyID, Alias, TenantID, Status string
	Expiration                     time.Time
}

// DeviceView is a registered device.
type DeviceView struct {
	DeviceID, Name, Owner, Status string
	Expiration                    time.Time
}

// CertView is an issued certificate without its private key.
type CertView struct {
	ID                                       string // the stored object's ID (its keynumber)
	KeyNumber                                int64
	Serial, DeviceID, Subject, Status, Owner string
	NotBefore, NotAfter                      time.Time
}

// KeyView is a symmetric key without its value.
type KeyView struct {
	ID                              string
	KeyNumber                       int64
	DeviceID, Alias, KeyType, Owner string
	Length                          int // in bits
	Status                          string
	Expiration                      time.Time
}

// page opens at most limit objects of kind with IDs after after (by ID, as text), each with
// view.
func page[R, V any](s *Service, ctx context.Context, kind, after string, limit int, view func(Object, *R) V) ([]V, error) {
	var out []V
	err := s.st.View(ctx, func(tx Tx) error {
		objs, err := tx.Page(kind, after, limit)
		if err != nil {
			return err
		}
		for _, o := range objs {
			var rec R
			if err := s.seal.open(o, &rec); err != nil {
				return err
			}
			out = append(out, view(o, &rec))
		}
		return nil
	})
	return out, err
}

// IDs returns a page of IDs, by keyid after after.
func (s *Service) IDs(ctx context.Context, after string, limit int) ([]IDView, error) {
	return page(s, ctx, kindID, after, limit, func(o Object, r *idRecord) IDView {
		return IDView{KeyID: r.KeyID, Alias: r.Alias, TenantID: r.TenantID, Status: r.Status, Expiration: time.UnixMilli(r.Expiration).UTC()}
	})
}

// Devices returns a page of devices, by deviceid after after.
func (s *Service) Devices(ctx context.Context, after string, limit int) ([]DeviceView, error) {
	return page(s, ctx, kindDevice, after, limit, func(o Object, r *deviceRecord) DeviceView {
		return DeviceView{DeviceID: r.DeviceID, Name: r.Name, Owner: o.Owner, Status: r.Status, Expiration: time.UnixMilli(r.Expiration).UTC()}
	})
}

// Certificates returns a page of certificates, by object ID after after.
func (s *Service) Certificates(ctx context.Context, after string, limit int) ([]CertView, error) {
	return page(s, ctx, kindCert, after, limit, func(o Object, r *certRecord) CertView {
		v := CertView{ID: o.ID, KeyNumber: r.KeyNumber, Serial: r.Serial, DeviceID: r.DeviceID, Subject: r.Subject,
			Status: r.Status, Owner: o.Owner, NotAfter: time.UnixMilli(r.NotAfter).UTC()}
		if c, err := x509.ParseCertificate(r.DER); err == nil {
			v.NotBefore, v.NotAfter = c.NotBefore.UTC(), c.NotAfter.UTC()
		}
		return v
	})
}

// Keys returns a page of symmetric keys, by object ID after after.
func (s *Service) Keys(ctx context.Context, after string, limit int) ([]KeyView, error) {
	return page(s, ctx, kindKey, after, limit, func(o Object, r *keyRecord) KeyView {
		return KeyView{ID: o.ID, KeyNumber: r.KeyNumber, DeviceID: r.DeviceID, Alias: r.Alias, KeyType: r.KeyType,
			Owner: o.Owner, Length: 8 * len(r.Value), Status: r.Status, Expiration: time.UnixMilli(r.Expiration).UTC()}
	})
}

// ErrNoCertificate is the answer for a certificate ID that is not stored.
var ErrNoCertificate = errors.New("clm: no such certificate")

// getCert reads the certificate object of id, ErrNoCertificate when there is none.
func getCert(tx Tx, id string) (Object, error) {
	o, ok, err := tx.Get(kindCert, id)
	if err == nil && !ok {
		err = ErrNoCertificate
	}
	return o, err
}

// CertificatePEM returns a certificate (never its private key) in PEM.
func (s *Service) CertificatePEM(ctx context.Context, id string) (string, error) {
	var out string
	err := s.st.View(ctx, func(tx Tx) error {
		o, err := getCert(tx, id)
		if err != nil {
			return err
		}
		var rec certRecord
		if err := s.seal.open(o, &rec); err != nil {
			return err
		}
		out = pemCert(rec.DER)
		return nil
	})
	return out, err
}

// RevokeCertificate revokes a certificate as actor's change (the audit log's actor is clm:actor): it is in
// the CRL signed in the same transaction. A certificate already revoked or updated stays as it
// is (ok false).
func (s *Service) RevokeCertificate(ctx context.Context, id, actor string) (ok bool, err error) {
	err = s.st.CLM(ctx, func(tx Tx) error {
		o, err := getCert(tx, id)
		if err != nil {
			return err
		}
		var rec certRecord
		if err := s.seal.open(o, &rec); err != nil {
			return err
		}
		if rec.Status != statusValid {
			return nil
		}
		if err := s.markRevoked(tx, o.Owner, actor, &rec); err != nil {
			return err
		}
		ok = true
		_, err = s.issueCRL(tx)
		return err
	})
	return ok, err
}

// CRL returns the current CRL (DER), signed again when it is older than a day.
func (s *Service) CRL(ctx context.Context) ([]byte, error) { return s.currentCRL(ctx) }

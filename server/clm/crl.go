package clm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// The CRL is the store's, not a replica's: a revoke adds the certificate's serial to the
// revoked index (objects of kind revoked: serial → revocation time) and signs the next CRL from
// that index in the same transaction, so that the revoke and its CRL are one outcome and the
// cost is that of the revoked set, not of every certificate. Every replica serves the CRL the
// store holds; one that is older than crlReissue is signed again (with the next number) when
// asked for.
const (
	crlValidity = 7 * 24 * time.Hour // nextUpdate − thisUpdate
	crlReissue  = 24 * time.Hour
)

// crlCache is the last CRL a replica served, with its thisUpdate, so that it is parsed once.
type crlCache struct {
	der        []byte
	thisUpdate time.Time
}

// markRevoked marks rec revoked, adds it to the revoked index and audits it as actor's change; the
// caller signs the CRL (issueCRL) in the same transaction.
func (s *Service) markRevoked(tx Tx, owner, actor string, rec *certRecord) error {
	rec.Status, rec.RevokedAt = statusRevoked, s.nowMillis()
	if err := s.putCert(tx, owner, rec); err != nil {
		return err
	}
	err := tx.Put(Object{Kind: kindRevoked, ID: rec.Serial, Value: []byte(strconv.FormatInt(rec.RevokedAt, 10))})
	if err != nil {
		return err
	}
	return audit(tx, actor, "cert-revoke", rec.DeviceID, rec.KeyNumber, "serial "+rec.Serial)
}

// issueCRL signs the next CRL from the revoked index and stores it. The CRL number is taken
// first: on PostgreSQL that serializes concurrent issues on the sequence's row, so that each
// lists every revoke committed before it, and the last stored lists them all.
func (s *Service) issueCRL(tx Tx) ([]byte, error) {
	number, err := tx.Next("crl")
	if err != nil {
		return nil, err
	}
	revoked, err := tx.List(kindRevoked)
	if err != nil {
		return nil, err
	}
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, o := range revoked {
		serial, ok := new(big.Int).SetString(o.ID, 16)
		at, err := strconv.ParseInt(string(o.Value), 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("clm: revoked index entry %q", o.ID)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: time.UnixMilli(at)})
	}
	now := s.cfg.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(number),
		ThisUpdate: now, NextUpdate: now.Add(crlValidity), RevokedCertificateEntries: entries}, s.ca.cert, s.ca.key)
	if err != nil {
		return nil, err
	}
	return der, tx.Put(Object{Kind: kindCRL, ID: "ca1", Value: der})
}

// ensureCRL makes the first CRL when the store holds none: for a database of an earlier
// version, whose revoked certificates are not indexed yet, it indexes them first (once: a scan
// of every certificate).
func (s *Service) ensureCRL(ctx context.Context) error {
	found := false
	err := s.st.View(ctx, func(tx Tx) error {
		_, ok, err := tx.Get(kindCRL, "ca1")
		found = ok
		return err
	})
	if err != nil || found {
		return err
	}
	return s.st.CLM(ctx, func(tx Tx) error {
		certs, err := tx.List(kindCert)
		if err != nil {
			return err
		}
		for _, o := range certs {
			var rec certRecord
			if err := s.seal.open(o, &rec); err != nil {
				return err
			}
			if rec.Status == statusRevoked {
				err := tx.Put(Object{Kind: kindRevoked, ID: rec.Serial, Value: []byte(strconv.FormatInt(rec.RevokedAt, 10))})
				if err != nil {
					return err
				}
			}
		}
		_, err = s.issueCRL(tx)
		return err
	})
}

// currentCRL returns the CRL the store holds, signing a new one when it is older than
// crlReissue.
func (s *Service) currentCRL(ctx context.Context) ([]byte, error) {
	var der []byte
	err := s.st.View(ctx, func(tx Tx) error {
		o, ok, err := tx.Get(kindCRL, "ca1")
		if err == nil && !ok {
			err = fmt.Errorf("clm: no CRL stored")
		}
		der = o.Value
		return err
	})
	if err != nil {
		return nil, err
	}
	this, err := s.crlThisUpdate(der)
	if err != nil {
		return nil, err
	}
	if s.cfg.Now().Sub(this) < crlReissue {
		return der, nil
	}
	err = s.st.CLM(ctx, func(tx Tx) error {
		var err error
		der, err = s.issueCRL(tx)
		return err
	})
	return der, err
}

// crlThisUpdate returns the thisUpdate of a CRL, parsing it only when it is not the last one
// served.
func (s *Service) crlThisUpdate(der []byte) (time.Time, error) {
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	if bytes.Equal(der, s.crl.der) {
		return s.crl.thisUpdate, nil
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return time.Time{}, fmt.Errorf("clm: stored CRL: %w", err)
	}
	s.crl = crlCache{der: der, thisUpdate: l.ThisUpdate}
	return l.ThisUpdate, nil
}

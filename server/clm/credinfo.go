package clm

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strconv"

	"software.sslmate.com/src/go-pkcs12"
)

// credInfo is POST CredInfo, by mode: create, get, update, revoke.
func (s *Service) credInfo(ctx context.Context, req request) (int, answer, *Error) {
	if e := req.required("mode"); e != nil {
		return 0, nil, e
	}
	switch req.get("mode") {
	case "create":
		return s.createCert(ctx, req)
	case "get", "update", "revoke":
		return s.useCert(ctx, req)
	}
	return 0, nil, fail(codeParameter, "mode %q", req.get("mode"))
}

// format reads a certificate format parameter (default pem) among allowed.
func format(req request, name string, allowed ...string) (string, *Error) {
	v := req.get(name)
	if v == "" {
		return "pem", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", fail(codeParameter, "%s %q", name, v)
}

// encodeCert writes a certificate in format: pem text, or base64 of der or PKCS#12 (with the key,
// no chain, encrypted with passphrase by the Modern2023 encoder, which OpenSSL 3 reads without
// -legacy).
func encodeCert(der, pkcs8 []byte, format, passphrase string) (string, error) {
	switch format {
	case "pem":
		return pemCert(der), nil
	case "der":
		return base64.StdEncoding.EncodeToString(der), nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	key, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return "", err
	}
	p12, err := pkcs12.Modern2023.Encode(key, cert, nil, passphrase)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(p12), nil
}

// caAnswer puts the CA certificate in a answer, in format.
func (s *Service) caAnswer(a answer, format string) {
	a["cacert"], _ = encodeCert(s.ca.der, nil, format, "")
	a["cacerttype"] = format
	a["cakeynumber"] = strconv.FormatInt(s.ca.number, 10)
	a["caserial"] = s.ca.serial
}

// clientAnswer puts a certificate in a answer, in format; the private key (PKCS#8 PEM) too,
// unless the certificate is PKCS#12, which carries it.
func (s *Service) clientAnswer(a answer, rec *certRecord, format, passphrase string) error {
	c, err := encodeCert(rec.DER, rec.KeyPKCS8, format, passphrase)
	if err != nil {
		return err
	}
	a["clientcert"], a["clientcerttype"] = c, format
	a["clientkeynumber"] = strconv.FormatInt(rec.KeyNumber, 10)
	a["clientserial"] = rec.Serial
	if format != "p12" {
		a["privatekey"] = pemKey(rec.KeyPKCS8)
	}
	return nil
}

// newCert makes a key pair and a certificate for subject (outside any transaction: key
// generation and signing are the slow part).
func (s *Service) newCert(subject string) (*certRecord, error) {
	name, ok := parseSubject(subject)
	if !ok {
		return nil, fail(codeParameter, "clientsubject %q", subject)
	}
	key, err := s.keys.key()
	if err != nil {
		return nil, err
	}
	serial, serialHex := randomSerial()
	now := s.cfg.Now()
	der, err := s.ca.issue(key.(crypto.Signer).Public(), name, serial, now, s.cfg.CertValidity)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &certRecord{Serial: serialHex, Subject: subject, DER: der, KeyPKCS8: pkcs8,
		NotAfter: now.Add(s.cfg.CertValidity).UnixMilli(), Status: statusValid}, nil
}

func (s *Service) putCert(tx Tx, owner string, rec *certRecord) error {
	id := strconv.FormatInt(rec.KeyNumber, 10)
	sealed, err := s.seal.seal(kindCert, id, rec)
	if err != nil {
		return err
	}
	return tx.Put(Object{Kind: kindCert, ID: id, Alt: rec.Serial, Owner: owner, Value: sealed})
}

func (s *Service) createCert(ctx context.Context, req request) (int, answer, *Error) {
	if e := req.required("keyid", "key", "devicename", "certmode", "catype", "keyfilepath"); e != nil {
		return 0, nil, e
	}
	mode := req.get("certmode")
	if mode != "caonly" && mode != "client" {
		return 0, nil, fail(codeParameter, "certmode %q", mode)
	}
	caFormat, e := format(req, "cacerttype", "pem", "der")
	if e != nil {
		return 0, nil, e
	}
	clientFormat, e := format(req, "clientcerttype", "pem", "der", "p12")
	if e != nil {
		return 0, nil, e
	}
	if mode == "client" {
		if e := req.required("clientsubject", "clientfilepath"); e != nil {
			return 0, nil, e
		}
		if clientFormat == "p12" {
			if e := req.required("passphrase"); e != nil {
				return 0, nil, e
			}
		}
	}
	if mode == "caonly" || clientFormat == "pem" {
		if e := req.required("cafilepath"); e != nil {
			return 0, nil, e
		}
	}
	if req.get("keyfilepath") != "/tmp/key" {
		return 0, nil, fail(codeParameter, "keyfilepath must be /tmp/key")
	}
	if e := req.lengths(false); e != nil {
		return 0, nil, e
	}
	if (mode == "caonly" && req.get("catype") != "CA") || (mode == "client" && req.get("catype") != "ca1") {
		return 0, nil, fail(codeCAType, "catype %q for certmode %s", req.get("catype"), mode)
	}
	id, e := s.authenticate(ctx, req.get("keyid"), req.get("key"))
	if e != nil {
		return 0, nil, e
	}
	var rec *certRecord
	if mode == "client" {
		var err error
		if rec, err = s.newCert(req.get("clientsubject")); err != nil {
			return 0, nil, s.internal("issue", err)
		}
		rec.Format, rec.Passphrase, rec.FilePath = clientFormat, req.get("passphrase"), req.get("clientfilepath")
	}
	a := answer{}
	err := s.st.CLM(ctx, func(tx Tx) error {
		dev, devKey, err := s.device(tx, id.KeyID, deviceOf(req), true)
		if err != nil {
			return err
		}
		a["deviceid"] = dev.DeviceID
		if devKey != "" {
			a["devicekey"] = devKey
		}
		s.caAnswer(a, caFormat)
		if rec == nil {
			return nil
		}
		rec.DeviceID = dev.DeviceID
		if rec.KeyNumber, err = tx.Next("keynumber"); err != nil {
			return err
		}
		if err := s.putCert(tx, id.KeyID, rec); err != nil {
			return err
		}
		return audit(tx, id.KeyID, "cert-create", dev.DeviceID, rec.KeyNumber, "serial "+rec.Serial)
	})
	if err == nil && rec != nil { // encoding (PKCS#12 derives keys) waits for no other change
		err = s.clientAnswer(a, rec, clientFormat, rec.Passphrase)
	}
	if err != nil {
		return 0, nil, s.internal("create certificate", err)
	}
	return http.StatusCreated, a, nil
}

// findCert finds a certificate of the owner by keynumber or serial: 1301 when there is none.
func (s *Service) findCert(tx Tx, owner, number, serial string) (*certRecord, error) {
	var o Object
	var ok bool
	var err error
	if number != "" {
		o, ok, err = tx.Get(kindCert, number)
	} else {
		o, ok, err = tx.ByAlt(kindCert, serial)
	}
	if err != nil {
		return nil, err
	}
	if !ok || o.Owner != owner {
		return nil, fail(codeCertNotFound, "keynumber %q serial %q", number, serial)
	}
	var rec certRecord
	if err := s.seal.open(o, &rec); err != nil {
		return nil, fail(codeDecryption, "certificate %s: %v", o.ID, err)
	}
	return &rec, nil
}

// useCert is CredInfo get, update and revoke.
func (s *Service) useCert(ctx context.Context, req request) (int, answer, *Error) {
	mode := req.get("mode")
	need := []string{"keyid", "key", "deviceid", "devicename", "catype"}
	if mode != "revoke" {
		need = append(need, "filepath")
	}
	if e := req.required(need...); e != nil {
		return 0, nil, e
	}
	if req.get("keynumber") == "" && req.get("certserial") == "" {
		return 0, nil, fail(codeRequired, "keynumber or certserial")
	}
	certFormat := "pem"
	if mode != "revoke" {
		var e *Error
		if certFormat, e = format(req, "certtype", "pem", "der", "p12"); e != nil {
			return 0, nil, e
		}
	}
	if e := req.lengths(false); e != nil {
		return 0, nil, e
	}
	catype := req.get("catype")
	if catype != "ca1" && !(catype == "CA" && mode == "get") {
		return 0, nil, fail(codeCAType, "catype %q", catype)
	}
	if catype == "CA" && certFormat == "p12" {
		return 0, nil, fail(codeParameter, "a CA certificate is pem or der")
	}
	if mode == "update" && req.get("newkeynumber") == "" && req.get("newcertserial") == "" {
		if e := req.required("passphrase"); e != nil {
			return 0, nil, e
		}
	}
	id, e := s.authenticate(ctx, req.get("keyid"), req.get("key"))
	if e != nil {
		return 0, nil, e
	}
	var fresh *certRecord
	if mode == "update" && req.get("newkeynumber") == "" && req.get("newcertserial") == "" {
		// The new certificate's subject is the old one's: look it up first, sign outside the
		// transaction, then check again inside it.
		var subject string
		err := s.st.View(ctx, func(tx Tx) error {
			old, err := s.findCert(tx, id.KeyID, req.get("keynumber"), req.get("certserial"))
			if err == nil {
				subject = old.Subject
			}
			return err
		})
		if err != nil {
			return 0, nil, s.internal("find certificate", err)
		}
		if fresh, err = s.newCert(subject); err != nil {
			return 0, nil, s.internal("issue", err)
		}
	}
	a := answer{}
	var shown *certRecord // the certificate the answer carries, encoded after the transaction
	var passphrase string
	run := s.st.CLM
	if mode == "get" {
		run = s.st.View
	}
	err := run(ctx, func(tx Tx) error {
		dev, _, err := s.device(tx, id.KeyID, deviceOf(req), false)
		if err != nil {
			return err
		}
		a["deviceid"] = dev.DeviceID
		if catype == "CA" {
			if req.get("keynumber") != strconv.FormatInt(s.ca.number, 10) && req.get("certserial") != s.ca.serial {
				return fail(codeCertNotFound, "not the CA's keynumber or serial")
			}
			s.caAnswer(a, certFormat)
			return nil
		}
		rec, err := s.findCert(tx, id.KeyID, req.get("keynumber"), req.get("certserial"))
		if err != nil {
			return err
		}
		switch {
		case rec.DeviceID != dev.DeviceID:
			return fail(codeCertBinding, "certificate %d belongs to another device", rec.KeyNumber)
		case rec.Status == statusRevoked || rec.Status == statusUpdated:
			return fail(codeCertRevoked, "certificate %d is %s", rec.KeyNumber, rec.Status)
		case rec.Status != statusValid:
			return fail(codeCertStatus, "certificate %d is %s", rec.KeyNumber, rec.Status)
		case rec.NotAfter <= s.nowMillis():
			return fail(codeCertExpired, "certificate %d", rec.KeyNumber)
		}
		passphrase = req.get("passphrase")
		switch mode {
		case "get":
			if certFormat == "p12" && passphrase == "" {
				if rec.Format != "p12" {
					return fail(codeRequired, "passphrase")
				}
				passphrase = rec.Passphrase
			}
			shown = rec
			return nil
		case "revoke":
			a["clientkeynumber"] = strconv.FormatInt(rec.KeyNumber, 10)
			a["clientserial"] = rec.Serial
			if err := s.revokeCert(tx, id.KeyID, rec); err != nil {
				return err
			}
			_, err := s.issueCRL(tx)
			return err
		}
		// update
		next := fresh
		if next == nil {
			if next, err = s.findCert(tx, id.KeyID, req.get("newkeynumber"), req.get("newcertserial")); err != nil {
				return err
			}
			switch {
			case next.Status != statusValid || next.DeviceID != dev.DeviceID:
				return fail(codeNewCertStatus, "certificate %d is %s", next.KeyNumber, next.Status)
			case next.NotAfter <= s.nowMillis():
				return fail(codeNewCertExpired, "certificate %d", next.KeyNumber)
			}
			if certFormat == "p12" && passphrase == "" {
				if next.Format != "p12" {
					return fail(codeRequired, "passphrase")
				}
				passphrase = next.Passphrase
			}
		} else {
			next.DeviceID, next.Format, next.Passphrase = dev.DeviceID, certFormat, passphrase
			next.FilePath = req.get("newfilepath")
			if next.KeyNumber, err = tx.Next("keynumber"); err != nil {
				return err
			}
			if err := s.putCert(tx, id.KeyID, next); err != nil {
				return err
			}
		}
		rec.Status = statusUpdated
		if err := s.putCert(tx, id.KeyID, rec); err != nil {
			return err
		}
		shown = next
		return audit(tx, id.KeyID, "cert-update", dev.DeviceID, next.KeyNumber, "serial "+next.Serial+" replaces "+rec.Serial)
	})
	if err == nil && shown != nil {
		err = s.clientAnswer(a, shown, certFormat, passphrase)
	}
	if err != nil {
		return 0, nil, s.internal("certificate "+mode, err)
	}
	return http.StatusOK, a, nil
}

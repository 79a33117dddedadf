package clm

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"strconv"

	"software.sslmate.com/src/go-pkcs12"
)

// credInfo is POST CredInfo, by mode: create, get, update, revoke.
func (s *Service) credInfo(ctx context.Context, req request) (answer, *Error) {
	if e := req.required("mode"); e != nil {
		return nil, e
	}
	switch req.get("mode") {
	case "create":
		return s.createCert(ctx, req)
	case "get", "update", "revoke":
		return s.useCert(ctx, req)
	}
	return nil, fail(codeParameter, "mode %q", req.get("mode"))
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

// caAnswer puts the CA certificate in a answer, in format (pem or der).
func (s *Service) caAnswer(a answer, format string) {
	a["cacert"] = s.ca.pem
	if format == "der" {
		a["cacert"] = s.ca.base64
	}
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

// certCreate is a checked CredInfo create: certmode and the formats of the answer.
type certCreate struct{ mode, caFormat, clientFormat string }

// checkCertCreate checks a CredInfo create's parameters.
func checkCertCreate(req request) (certCreate, *Error) {
	if e := req.required("keyid", "key", "devicename", "certmode", "catype", "keyfilepath"); e != nil {
		return certCreate{}, e
	}
	c := certCreate{mode: req.get("certmode")}
	if c.mode != "caonly" && c.mode != "client" {
		return certCreate{}, fail(codeParameter, "certmode %q", c.mode)
	}
	var e *Error
	if c.caFormat, e = format(req, "cacerttype", "pem", "der"); e != nil {
		return certCreate{}, e
	}
	if c.clientFormat, e = format(req, "clientcerttype", "pem", "der", "p12"); e != nil {
		return certCreate{}, e
	}
	if c.mode == "client" {
		if e := req.required("clientsubject", "clientfilepath"); e != nil {
			return certCreate{}, e
		}
		if c.clientFormat == "p12" {
			if e := req.required("passphrase"); e != nil {
				return certCreate{}, e
			}
		}
	}
	if c.mode == "caonly" || c.clientFormat == "pem" {
		if e := req.required("cafilepath"); e != nil {
			return certCreate{}, e
		}
	}
	if req.get("keyfilepath") != "/tmp/key" {
		return certCreate{}, fail(codeParameter, "keyfilepath must be /tmp/key")
	}
	if e := req.lengths(false); e != nil {
		return certCreate{}, e
	}
	if (c.mode == "caonly" && req.get("catype") != "CA") || (c.mode == "client" && req.get("catype") != "ca1") {
		return certCreate{}, fail(codeCAType, "catype %q for certmode %s", req.get("catype"), c.mode)
	}
	return c, nil
}

// createCert is CredInfo create: the device (registered when new), the CA certificate and, for
// certmode client, a new client certificate.
func (s *Service) createCert(ctx context.Context, req request) (answer, *Error) {
	c, e := checkCertCreate(req)
	if e != nil {
		return nil, e
	}
	mode, caFormat, clientFormat := c.mode, c.caFormat, c.clientFormat
	id, e := s.authenticate(ctx, req.get("keyid"), req.get("key"))
	if e != nil {
		return nil, e
	}
	var rec *certRecord
	if mode == "client" {
		var err error
		if rec, err = s.newCert(req.get("clientsubject")); err != nil {
			return nil, s.internal("issue", err)
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
		return nil, s.internal("create certificate", err)
	}
	return a, nil
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

// certUse is a checked CredInfo get, update or revoke: its parameters, the ID it comes
// through, its catype and the format of the certificate it answers.
type certUse struct {
	req    request
	owner  string
	catype string
	format string
}

// useCert is CredInfo get, update and revoke: the checks they share, then the mode's own.
func (s *Service) useCert(ctx context.Context, req request) (answer, *Error) {
	u, e := s.checkCertUse(ctx, req)
	if e != nil {
		return nil, e
	}
	var a answer
	var err error
	switch req.get("mode") {
	case "get":
		a, err = s.getCert(ctx, u)
	case "update":
		a, err = s.updateCert(ctx, u)
	default:
		a, err = s.revokeCert(ctx, u)
	}
	if err != nil {
		return nil, s.internal("certificate "+req.get("mode"), err)
	}
	return a, nil
}

// checkCertUse checks a get, update or revoke's parameters and authenticates its ID.
func (s *Service) checkCertUse(ctx context.Context, req request) (certUse, *Error) {
	mode := req.get("mode")
	need := []string{"keyid", "key", "deviceid", "devicename", "catype"}
	if mode != "revoke" {
		need = append(need, "filepath")
	}
	if e := req.required(need...); e != nil {
		return certUse{}, e
	}
	if req.get("keynumber") == "" && req.get("certserial") == "" {
		return certUse{}, fail(codeRequired, "keynumber or certserial")
	}
	u := certUse{req: req, catype: req.get("catype"), format: "pem"}
	if mode != "revoke" {
		var e *Error
		if u.format, e = format(req, "certtype", "pem", "der", "p12"); e != nil {
			return certUse{}, e
		}
	}
	if e := req.lengths(false); e != nil {
		return certUse{}, e
	}
	if u.catype != "ca1" && !(u.catype == "CA" && mode == "get") {
		return certUse{}, fail(codeCAType, "catype %q", u.catype)
	}
	if u.catype == "CA" && u.format == "p12" {
		return certUse{}, fail(codeParameter, "a CA certificate is pem or der")
	}
	if mode == "update" && !u.namesSuccessor() {
		if e := req.required("passphrase"); e != nil {
			return certUse{}, e
		}
	}
	id, e := s.authenticate(ctx, req.get("keyid"), req.get("key"))
	if e != nil {
		return certUse{}, e
	}
	u.owner = id.KeyID
	return u, nil
}

// namesSuccessor reports whether an update names the certificate that replaces the old one.
func (u certUse) namesSuccessor() bool {
	return u.req.get("newkeynumber") != "" || u.req.get("newcertserial") != ""
}

// onDevice runs fn in one transaction (read-only unless write) on the request's device, with the
// answer's deviceid set, and returns the answer.
func (s *Service) onDevice(ctx context.Context, owner string, req request, write bool, fn func(tx Tx, dev *deviceRecord, a answer) error) (answer, error) {
	a := answer{}
	run := s.st.View
	if write {
		run = s.st.CLM
	}
	err := run(ctx, func(tx Tx) error {
		dev, _, err := s.device(tx, owner, deviceOf(req), false)
		if err != nil {
			return err
		}
		a["deviceid"] = dev.DeviceID
		return fn(tx, dev, a)
	})
	return a, err
}

// usableCert finds the request's certificate and checks that dev may use it: 1303 when it is
// another device's, 1306 when revoked or updated, 1304 for another status, 1305 when expired.
func (s *Service) usableCert(tx Tx, owner string, dev *deviceRecord, req request) (*certRecord, error) {
	rec, err := s.findCert(tx, owner, req.get("keynumber"), req.get("certserial"))
	if err != nil {
		return nil, err
	}
	switch {
	case rec.DeviceID != dev.DeviceID:
		return nil, fail(codeCertBinding, "certificate %d belongs to another device", rec.KeyNumber)
	case rec.Status == statusRevoked || rec.Status == statusUpdated:
		return nil, fail(codeCertRevoked, "certificate %d is %s", rec.KeyNumber, rec.Status)
	case rec.Status != statusValid:
		return nil, fail(codeCertStatus, "certificate %d is %s", rec.KeyNumber, rec.Status)
	case rec.NotAfter <= s.nowMillis():
		return nil, fail(codeCertExpired, "certificate %d", rec.KeyNumber)
	}
	return rec, nil
}

// storedPassphrase returns the passphrase of a p12 answer: the request's, or the one rec was
// issued with (1102 when rec was not issued as p12).
func storedPassphrase(format, given string, rec *certRecord) (string, error) {
	if format != "p12" || given != "" {
		return given, nil
	}
	if rec.Format != "p12" {
		return "", fail(codeRequired, "passphrase")
	}
	return rec.Passphrase, nil
}

// getCert is CredInfo get: a client certificate, or with catype CA the CA's.
func (s *Service) getCert(ctx context.Context, u certUse) (answer, error) {
	var shown *certRecord // encoded after the transaction
	passphrase := u.req.get("passphrase")
	a, err := s.onDevice(ctx, u.owner, u.req, false, func(tx Tx, dev *deviceRecord, a answer) error {
		if u.catype == "CA" {
			if u.req.get("keynumber") != strconv.FormatInt(s.ca.number, 10) && u.req.get("certserial") != s.ca.serial {
				return fail(codeCertNotFound, "not the CA's keynumber or serial")
			}
			s.caAnswer(a, u.format)
			return nil
		}
		rec, err := s.usableCert(tx, u.owner, dev, u.req)
		if err != nil {
			return err
		}
		shown = rec
		passphrase, err = storedPassphrase(u.format, passphrase, rec)
		return err
	})
	if err == nil && shown != nil {
		err = s.clientAnswer(a, shown, u.format, passphrase)
	}
	return a, err
}

// revokeCert is CredInfo revoke: the certificate is revoked and in the next CRL, one outcome.
func (s *Service) revokeCert(ctx context.Context, u certUse) (answer, error) {
	return s.onDevice(ctx, u.owner, u.req, true, func(tx Tx, dev *deviceRecord, a answer) error {
		rec, err := s.usableCert(tx, u.owner, dev, u.req)
		if err != nil {
			return err
		}
		a["clientkeynumber"] = strconv.FormatInt(rec.KeyNumber, 10)
		a["clientserial"] = rec.Serial
		if err := s.markRevoked(tx, u.owner, u.owner, rec); err != nil {
			return err
		}
		_, err = s.issueCRL(tx)
		return err
	})
}

// updateCert is CredInfo update: the certificate is replaced by a new one for the same subject,
// or by the one the request names, and becomes updated.
func (s *Service) updateCert(ctx context.Context, u certUse) (answer, error) {
	var fresh *certRecord
	if !u.namesSuccessor() {
		// The new certificate's subject is the old one's: look it up first, sign outside the
		// transaction, then check again inside it.
		var subject string
		err := s.st.View(ctx, func(tx Tx) error {
			old, err := s.findCert(tx, u.owner, u.req.get("keynumber"), u.req.get("certserial"))
			if err == nil {
				subject = old.Subject
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if fresh, err = s.newCert(subject); err != nil {
			return nil, err
		}
	}
	var next *certRecord
	passphrase := u.req.get("passphrase")
	a, err := s.onDevice(ctx, u.owner, u.req, true, func(tx Tx, dev *deviceRecord, a answer) error {
		rec, err := s.usableCert(tx, u.owner, dev, u.req)
		if err != nil {
			return err
		}
		if fresh != nil {
			next, err = s.storeSuccessor(tx, u, dev, fresh, passphrase)
		} else if next, err = s.namedSuccessor(tx, u, dev); err == nil {
			passphrase, err = storedPassphrase(u.format, passphrase, next)
		}
		if err != nil {
			return err
		}
		rec.Status = statusUpdated
		if err := s.putCert(tx, u.owner, rec); err != nil {
			return err
		}
		return audit(tx, u.owner, "cert-update", dev.DeviceID, next.KeyNumber, "serial "+next.Serial+" replaces "+rec.Serial)
	})
	if err == nil {
		err = s.clientAnswer(a, next, u.format, passphrase)
	}
	return a, err
}

// storeSuccessor stores a new certificate made for an update.
func (s *Service) storeSuccessor(tx Tx, u certUse, dev *deviceRecord, next *certRecord, passphrase string) (*certRecord, error) {
	next.DeviceID, next.Format, next.Passphrase = dev.DeviceID, u.format, passphrase
	next.FilePath = u.req.get("newfilepath")
	var err error
	if next.KeyNumber, err = tx.Next("keynumber"); err != nil {
		return nil, err
	}
	return next, s.putCert(tx, u.owner, next)
}

// namedSuccessor finds the certificate an update names, which must be valid (1307) and
// unexpired (1308).
func (s *Service) namedSuccessor(tx Tx, u certUse, dev *deviceRecord) (*certRecord, error) {
	next, err := s.findCert(tx, u.owner, u.req.get("newkeynumber"), u.req.get("newcertserial"))
	if err != nil {
		return nil, err
	}
	switch {
	case next.Status != statusValid || next.DeviceID != dev.DeviceID:
		return nil, fail(codeNewCertStatus, "certificate %d is %s", next.KeyNumber, next.Status)
	case next.NotAfter <= s.nowMillis():
		return nil, fail(codeNewCertExpired, "certificate %d", next.KeyNumber)
	}
	return next, nil
}

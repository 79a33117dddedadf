package clm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxKeyID is the largest keyid: ten decimal digits.
const maxKeyID = 9999999999

// idInfo is POST IDInfo, by mode: create, auth, delete.
func (s *Service) idInfo(ctx context.Context, req request) (answer, *Error) {
	if e := req.required("mode"); e != nil {
		return nil, e
	}
	switch req.get("mode") {
	case "create":
		return s.createID(ctx, req)
	case "auth":
		if e := req.required("keyid", "key"); e != nil {
			return nil, e
		}
		if _, e := s.authenticate(ctx, req.get("keyid"), req.get("key")); e != nil {
			return nil, e
		}
		return answer{"keyid": req.get("keyid")}, nil
	case "delete":
		if e := req.required("keyid", "key"); e != nil {
			return nil, e
		}
		if _, e := s.authenticate(ctx, req.get("keyid"), req.get("key")); e != nil {
			return nil, e
		}
		err := s.st.CLM(ctx, func(tx Tx) error { return s.deleteID(tx, req.get("keyid")) })
		if err != nil {
			return nil, s.internal("delete id", err)
		}
		return answer{"keyid": req.get("keyid")}, nil
	}
	return nil, fail(codeParameter, "mode %q", req.get("mode"))
}

// deleteID deletes an ID and revokes its valid certificates (in the CRL with the delete): no
// certificate outlives the ID it was issued through. Its devices and symmetric keys stay stored,
// unreachable. The ID is locked first: every change of its certificates holds it, so the
// delete waits for those under way and sees what they stored.
func (s *Service) deleteID(tx Tx, keyid string) error {
	if _, ok, err := tx.Get(kindID, keyid); err != nil {
		return err
	} else if !ok {
		return fail(codeIDNotFound, "keyid %q (deleted)", keyid)
	}
	certs, err := tx.Owned(kindCert, keyid)
	if err != nil {
		return err
	}
	revoked := 0
	for _, o := range certs {
		var rec certRecord
		if err := s.seal.open(o, &rec); err != nil {
			return fail(codeDecryption, "certificate %s: %v", o.ID, err)
		}
		if rec.Status != statusValid {
			continue
		}
		if err := s.markRevoked(tx, keyid, keyid, &rec); err != nil {
			return err
		}
		revoked++
	}
	if revoked > 0 {
		if _, err := s.issueCRL(tx); err != nil {
			return err
		}
	}
	if err := tx.Delete(kindID, keyid); err != nil {
		return err
	}
	return audit(tx, keyid, "id-delete", "", 0, "")
}

// createID issues an ID (a ten-digit sequence number) and a random password.
func (s *Service) createID(ctx context.Context, req request) (answer, *Error) {
	if e := req.required("tenantid", "alias"); e != nil {
		return nil, e
	}
	rec := idRecord{Alias: req.get("alias"), TenantID: req.get("tenantid"), Password: randomText(s.cfg.PasswordBytes),
		Expiration: s.cfg.Now().Add(s.cfg.IDValidity).UnixMilli(), Status: statusValid}
	err := s.st.CLM(ctx, func(tx Tx) error {
		n, err := tx.Next("keyid")
		if err != nil {
			return err
		}
		if n > maxKeyID {
			return fail(codeIDOverflow, "keyid sequence at %d", n)
		}
		rec.KeyID = fmt.Sprintf("%010d", n)
		sealed, err := s.seal.seal(kindID, rec.KeyID, rec)
		if err != nil {
			return err
		}
		if err := tx.Put(Object{Kind: kindID, ID: rec.KeyID, Alt: rec.TenantID, Owner: rec.KeyID, Value: sealed}); err != nil {
			return err
		}
		return audit(tx, rec.KeyID, "id-create", "", 0, "tenant "+rec.TenantID)
	})
	if err != nil {
		return nil, s.internal("create id", err)
	}
	return answer{"keyid": rec.KeyID, "key": rec.Password, "alias": rec.Alias,
		"expiration": strconv.FormatInt(rec.Expiration, 10)}, nil
}

// validText reports whether s is text that a stored key may hold: UTF-8 without U+0000.
func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// idInfoAnswer is one ID of a GET IDInfo answer.
func idInfoAnswer(rec *idRecord) answer {
	return answer{"keyid": rec.KeyID, "key": rec.Password, "alias": rec.Alias,
		"tenantid": rec.TenantID, "expiration": strconv.FormatInt(rec.Expiration, 10)}
}

// listID is GET IDInfo?keyid=: that ID and its password (license-key authentication only); an
// unknown keyid gives an empty list.
func (s *Service) listID(ctx context.Context, req request) (answer, *Error) {
	keyid := req.get("keyid")
	infos := []answer{}
	err := s.st.View(ctx, func(tx Tx) error {
		if !validText(keyid) {
			return nil // no keyid holds such a character
		}
		o, ok, err := tx.Get(kindID, keyid)
		if err != nil || !ok {
			return err
		}
		var rec idRecord
		if err := s.seal.open(o, &rec); err != nil {
			return fail(codeDecryption, "id %s: %v", o.ID, err)
		}
		infos = append(infos, idInfoAnswer(&rec))
		return nil
	})
	if err != nil {
		return nil, s.internal("list ids", err)
	}
	return answer{"keyid": keyid, "keyinfo": infos}, nil
}

// idPage reads the IDs after after, at most cfg.IDPage of them.
func (s *Service) idPage(ctx context.Context, after string) ([]answer, string, *Error) {
	var infos []answer
	err := s.st.View(ctx, func(tx Tx) error {
		objs, err := tx.Page(kindID, after, s.cfg.IDPage)
		if err != nil {
			return err
		}
		for _, o := range objs {
			var rec idRecord
			if err := s.seal.open(o, &rec); err != nil {
				return fail(codeDecryption, "id %s: %v", o.ID, err)
			}
			infos = append(infos, idInfoAnswer(&rec))
			after = o.ID
		}
		return nil
	})
	if err != nil {
		return nil, "", s.internal("list ids", err)
	}
	return infos, after, nil
}

package clm

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
)

// keyLengths are the allowed lengths, in bits, per key type. TWINE is defined for 80- and
// 128-bit keys; the document's "80bit, 256bit" for it is read as 80 and 128.
var keyLengths = map[string]map[int]bool{"AES": {128: true, 256: true}, "TWINE": {80: true, 128: true}}

// keyInfo is POST KeyInfo, by mode: create, get, update, delete.
func (s *Service) keyInfo(ctx context.Context, req request) (answer, *Error) {
	if e := req.required("mode"); e != nil {
		return nil, e
	}
	switch req.get("mode") {
	case "create":
		return s.createKey(ctx, req)
	case "get", "update", "delete":
		return s.useKey(ctx, req)
	}
	return nil, fail(codeParameter, "mode %q", req.get("mode"))
}

// keyLength reads keylength (default 128) for keytype: 1103 when it is not a decimal number,
// 1104 (a parameter's specification) when it is a length the key type does not have.
func keyLength(req request, keyType string) (int, *Error) {
	n := 128
	if v := req.get("keylength"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return 0, fail(codeParameter, "keylength %q", v)
		}
	}
	if !keyLengths[keyType][n] {
		return 0, fail(codeLength, "keylength %d for %s", n, keyType)
	}
	return n, nil
}

func (s *Service) keyAnswer(rec *keyRecord) answer {
	return answer{"deviceid": rec.DeviceID, "commonkey": base64.StdEncoding.EncodeToString(rec.Value),
		"keynumber": strconv.FormatInt(rec.KeyNumber, 10), "alias": rec.Alias, "expiration": strconv.FormatInt(rec.Expiration, 10)}
}

func (s *Service) putKey(tx Tx, owner string, rec *keyRecord) error {
	id := strconv.FormatInt(rec.KeyNumber, 10)
	sealed, err := s.seal.seal(kindKey, id, rec)
	if err != nil {
		return err
	}
	return tx.Put(Object{Kind: kindKey, ID: id, Alt: rec.DeviceID, Owner: owner, Value: sealed})
}

// newKey makes a key of keyType and length bits.
func (s *Service) newKey(tx Tx, owner, deviceID, alias, keyType string, bits int, filePath string) (*keyRecord, error) {
	n, err := tx.Next("keynumber")
	if err != nil {
		return nil, err
	}
	rec := &keyRecord{KeyNumber: n, DeviceID: deviceID, Alias: alias, KeyType: keyType, Value: make([]byte, bits/8),
		FilePath: filePath, Expiration: s.cfg.Now().Add(s.cfg.KeyValidity).UnixMilli(), Status: statusValid}
	rand.Read(rec.Value)
	return rec, s.putKey(tx, owner, rec)
}

func (s *Service) createKey(ctx context.Context, req request) (answer, *Error) {
	if e := req.required("keyid", "key", "alias", "keytype", "keyfilepath", "commonkeyfilepath"); e != nil {
		return nil, e
	}
	if req.get("deviceid") == "" {
		if e := req.required("devicename"); e != nil {
			return nil, e
		}
	}
	keyType := req.get("keytype")
	if keyLengths[keyType] == nil {
		return nil, fail(codeParameter, "keytype %q", keyType)
	}
	bits, e := keyLength(req, keyType)
	if e != nil {
		return nil, e
	}
	if req.get("keyfilepath") != "/tmp/key" {
		return nil, fail(codeParameter, "keyfilepath must be /tmp/key")
	}
	if e := req.lengths(true); e != nil {
		return nil, e
	}
	var a answer
	err := s.st.CLM(ctx, func(tx Tx) error {
		id, err := s.authorize(tx, req.get("keyid"), req.get("key"))
		if err != nil {
			return err
		}
		dev, devKey, err := s.heldDevice(tx, id.KeyID, deviceOf(req), true)
		if err != nil {
			return err
		}
		rec, err := s.newKey(tx, id.KeyID, dev.DeviceID, req.get("alias"), keyType, bits, req.get("commonkeyfilepath"))
		if err != nil {
			return err
		}
		if err := audit(tx, id.KeyID, "key-create", dev.DeviceID, rec.KeyNumber, keyType+"-"+strconv.Itoa(bits)); err != nil {
			return err
		}
		a = s.keyAnswer(rec)
		if devKey != "" {
			a["devicekey"] = devKey
		}
		return nil
	})
	if err != nil {
		return nil, s.internal("create key", err)
	}
	return a, nil
}

// deviceOf reads a request's device parameters.
func deviceOf(req request) deviceRequest {
	return deviceRequest{id: req.get("deviceid"), name: req.get("devicename"), key: req.get("devicekey"),
		ip: req.get("ipaddress"), mac: req.get("macaddress"), ext: req.ext}
}

// loadKey finds key number (as text) for the device: 1501 when it is none of the owner's, 1503
// when it belongs to another device, 1504 when it was updated or deleted.
func (s *Service) loadKey(tx Tx, owner, deviceID, number string, notFound int) (*keyRecord, error) {
	o, ok, err := tx.Get(kindKey, number)
	if err != nil {
		return nil, err
	}
	if !ok || o.Owner != owner {
		return nil, fail(notFound, "keynumber %q", number)
	}
	var rec keyRecord
	if err := s.seal.open(o, &rec); err != nil {
		return nil, fail(codeDecryption, "key %s: %v", number, err)
	}
	if rec.DeviceID != deviceID && notFound == codeKeyNotFound {
		return nil, fail(codeKeyBinding, "keynumber %s belongs to another device", number)
	}
	return &rec, nil
}

// useKey is KeyInfo get, update and delete: the checks they share, then the mode's own.
func (s *Service) useKey(ctx context.Context, req request) (answer, *Error) {
	mode := req.get("mode")
	need := []string{"keyid", "key", "deviceid", "devicename", "keynumber", "filepath"}
	if mode == "delete" {
		need = append(need, "commonkey")
	}
	if e := req.required(need...); e != nil {
		return nil, e
	}
	if e := req.lengths(true); e != nil {
		return nil, e
	}
	op := s.updateKey
	switch mode {
	case "get":
		op = s.getKey
	case "delete":
		op = s.deleteKey
	}
	run := s.st.CLM
	if mode == "get" {
		run = s.st.View
	}
	var a answer
	err := run(ctx, func(tx Tx) error {
		id, err := s.authorize(tx, req.get("keyid"), req.get("key"))
		if err != nil {
			return err
		}
		dev, _, err := s.heldDevice(tx, id.KeyID, deviceOf(req), false)
		if err != nil {
			return err
		}
		rec, err := s.loadKey(tx, id.KeyID, dev.DeviceID, req.get("keynumber"), codeKeyNotFound)
		if err != nil {
			return err
		}
		if rec.Status != statusValid {
			return fail(codeKeyUpdated, "keynumber %s is %s", req.get("keynumber"), rec.Status)
		}
		a, err = op(tx, id.KeyID, dev, rec, req)
		return err
	})
	if err != nil {
		return nil, s.internal("key "+mode, err)
	}
	return a, nil
}

// getKey is KeyInfo get of rec, a valid key of dev.
func (s *Service) getKey(_ Tx, _ string, _ *deviceRecord, rec *keyRecord, _ request) (answer, error) {
	return s.keyAnswer(rec), nil
}

// deleteKey is KeyInfo delete of rec, whose value the request must give (1508).
func (s *Service) deleteKey(tx Tx, owner string, dev *deviceRecord, rec *keyRecord, req request) (answer, error) {
	given, err := base64.StdEncoding.DecodeString(req.get("commonkey"))
	if err != nil || subtle.ConstantTimeCompare(given, rec.Value) != 1 {
		return nil, fail(codeCommonKey, "commonkey of keynumber %s", req.get("keynumber"))
	}
	if err := tx.Delete(kindKey, req.get("keynumber")); err != nil {
		return nil, err
	}
	if err := audit(tx, owner, "key-delete", dev.DeviceID, rec.KeyNumber, ""); err != nil {
		return nil, err
	}
	return answer{"deviceid": dev.DeviceID, "keynumber": req.get("keynumber")}, nil
}

// updateKey is KeyInfo update of rec: it adopts newkeynumber, or makes a new key (of the same
// type, keylength, alias), and rec becomes updated.
func (s *Service) updateKey(tx Tx, owner string, dev *deviceRecord, rec *keyRecord, req request) (answer, error) {
	var next *keyRecord
	var err error
	if nk := req.get("newkeynumber"); nk != "" {
		if next, err = s.loadKey(tx, owner, dev.DeviceID, nk, codeNewKeyNotFound); err != nil {
			return nil, err
		}
		switch {
		case next.Status != statusValid:
			return nil, fail(codeNewKeyStatus, "newkeynumber %s is %s", nk, next.Status)
		case next.Expiration <= s.nowMillis():
			return nil, fail(codeNewKeyExpired, "newkeynumber %s", nk)
		case next.KeyType != rec.KeyType:
			return nil, fail(codeKeyTypeDiffers, "%s and %s", rec.KeyType, next.KeyType)
		}
	} else {
		bits, e := keyLength(req, rec.KeyType)
		if e != nil {
			return nil, e
		}
		alias := cmp.Or(req.get("alias"), rec.Alias)
		path := cmp.Or(req.get("newfilepath"), req.get("filepath"))
		if next, err = s.newKey(tx, owner, dev.DeviceID, alias, rec.KeyType, bits, path); err != nil {
			return nil, err
		}
	}
	rec.Status = statusUpdated
	if err := s.putKey(tx, owner, rec); err != nil {
		return nil, err
	}
	if err := audit(tx, owner, "key-update", dev.DeviceID, next.KeyNumber, "replaces "+strconv.FormatInt(rec.KeyNumber, 10)); err != nil {
		return nil, err
	}
	return s.keyAnswer(next), nil
}

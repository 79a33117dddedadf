package clm_test

import (
	"strings"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// TestDocumentExamples sends the request examples of the document (tables 3-1, 3-4, 3-6, 4-2,
// 4-5, 4-6, 4-9, 4-11, 5-1, 5-3, 5-5, 5-7) as printed, but for the ID, password, device ID and key
// numbers they need, which are first issued; the answers carry the fields of the document's
// response examples.
func TestDocumentExamples(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "rsa")
		// Table 3-1 (with "tenantid"; the parameter list spells it "tenanted").
		out := r.mustCall(t, "POST", clm.PathIDInfo, `{ "mode": "create", "tenantid": "tenant01", "alias": "DemoKey1" }`, 201, 0)
		hasFields(t, "3-2", out, "errorcode", "keyid", "key", "alias", "expiration")
		keyid, key := out["keyid"].(string), out["key"].(string)
		if len(keyid) != 10 || out["alias"] != "DemoKey1" {
			t.Fatalf("3-2: %v", out)
		}
		out = r.mustCall(t, "GET", clm.PathIDInfo+"?keyid="+keyid, "", 200, 0)
		info := out["keyinfo"].([]any)
		if len(info) != 1 {
			t.Fatalf("3-3: %v", out)
		}
		hasFields(t, "3-3 keyinfo", info[0].(map[string]any), "keyid", "key", "alias", "tenantid", "expiration")

		// Table 3-4.
		out = r.mustCall(t, "POST", clm.PathIDInfo, printed(`{ "mode": "auth", "keyid": "00000000001", "key": "cGFzc3dv" }`, keyid, key), 200, 0)
		hasFields(t, "3-5", out, "errorcode", "keyid")

		// Table 4-2: a client certificate in pem; the device is registered.
		out = r.mustCall(t, "POST", clm.PathCredInfo, printed(`{
	  "mode": "create", "keyid": "0000000001", "key": "cGFzc3dv", "devicename": "nec-edge-0001",
	  "certmode": "client", "catype": "ca1", "clientsubject": "/C=JP/L=Tokyo/O=NEC/CN=AP1", "keyfilepath": "/tmp/key",
	  "cafepath": "/etc/opt/nec/swclm/keyfile/cacert.pem", "clientfilepath": "/etc/opt/nec/swclm/keyfile/clcert.pem",
	  "ipaddress": "192.168.0.1", "macaddress": "aa:aa:aa:aa:aa:aa",
	  "ext_data": {"osname": "CentOS", "osversion": "6.8", "memoriesize": "2048MB", "flag": "1"} }`, keyid, key), 201, 0)
		hasFields(t, "4-3", out, "errorcode", "deviceid", "devicekey", "cacert", "cacerttype", "cakeynumber", "caserial",
			"clientcert", "clientcerttype", "clientkeynumber", "clientserial", "privatekey")
		deviceID := out["deviceid"].(string)
		certNumber, caSerial := out["clientkeynumber"].(string), out["caserial"].(string)
		if !strings.HasPrefix(out["privatekey"].(string), "-----BEGIN PRIVATE KEY-----") || len(out["clientserial"].(string)) != 16 {
			t.Fatalf("4-3: %v", out)
		}
		dev := func(s string) string {
			return strings.ReplaceAll(printed(s, keyid, key), `"deviceid": "0000000001"`, `"deviceid": "`+deviceID+`"`)
		}

		// Table 4-5: the CA certificate by its serial.
		out = r.mustCall(t, "POST", clm.PathCredInfo, strings.ReplaceAll(dev(`{ "mode": "get", "keyid": "0000000001", "key": "cGFzc3dv",
	  "deviceid": "0000000001", "devicename": "nec-edge-0001", "certserial": "863542E528A7233F", "catype": "CA", "certtype": "pem",
	  "filepath": "/etc/opt/nec/swclm/keyfile/cacert.pem" }`), "863542E528A7233F", caSerial), 200, 0)
		hasFields(t, "4-7", out, "errorcode", "deviceid", "cacert", "cacerttype", "cakeynumber", "caserial")

		// Table 4-6: the client certificate by its key number.
		out = r.mustCall(t, "POST", clm.PathCredInfo, strings.ReplaceAll(dev(`{ "mode": "get", "keyid": "0000000001", "key": "cGFzc3dv",
	  "deviceid": "0000000001", "devicename": "nec-edge-0001", "keynumber": "2", "catype": "ca1", "certtype": "pem",
	  "filepath": "/etc/opt/nec/swclm/keyfile/clcert.pem" }`), `"keynumber": "2"`, `"keynumber": "`+certNumber+`"`), 200, 0)
		hasFields(t, "4-8", out, "errorcode", "deviceid", "clientcert", "clientcerttype", "clientkeynumber", "clientserial", "privatekey")

		// Table 4-9: update (a new key pair, the same subject).
		out = r.mustCall(t, "POST", clm.PathCredInfo, strings.ReplaceAll(dev(`{ "mode": "update", "keyid": "0000000001", "key": "cGFzc3dv",
	  "deviceid": "0000000001", "devicename": "nec-edge-0001", "keynumber": "54", "catype": "ca1", "certtype": "pem",
	  "passphrase": "pass", "filepath": "/etc/opt/nec/swclm/keyfile/clcert.pem", "newfilepath": "/etc/opt/nec/swclm/keyfile/clcert_upd.pem" }`),
			`"keynumber": "54"`, `"keynumber": "`+certNumber+`"`), 200, 0)
		hasFields(t, "4-10", out, "errorcode", "deviceid", "clientcert", "clientcerttype", "clientkeynumber", "clientserial", "privatekey")
		updated := out["clientkeynumber"].(string)

		// Table 4-11: revoke the updated certificate.
		out = r.mustCall(t, "POST", clm.PathCredInfo, strings.ReplaceAll(dev(`{ "mode": "revoke", "keyid": "00000000001", "key": "cGFzc3dv",
	  "deviceid": "0000000001", "devicename": "nec-edge-0001", "keynumber": "54", "catype": "ca1", "filepath": "/etc/opt/nec/swclm/keyfile/clcert.pem" }`),
			`"keynumber": "54"`, `"keynumber": "`+updated+`"`), 200, 0)
		hasFields(t, "4-12", out, "errorcode", "deviceid", "clientkeynumber", "clientserial")

		// Table 5-1: a symmetric key for a new device.
		out = r.mustCall(t, "POST", clm.PathKeyInfo, printed(`{ "mode": "create", "keyid": "00000000001", "key": "cGFzc3dv",
	  "devicename": "device01", "ipaddress": "192.168.0.1", "macaddress": "aa:aa:aa:aa:aa:aa", "alias": "iotgatewaytest cmkey",
	  "keyfilepath": "/tmp/key", "keylength": "128", "keytype": "AES", "commonkeyfilepath": "/etc/opt/nec/swclm/keyfile/cmkey",
	  "ext_data": {"osname": "CentOS", "osversion": "6.8", "memsize": "2048MB", "flag": "1"} }`, keyid, key), 201, 0)
		hasFields(t, "5-2", out, "errorcode", "alias", "expiration", "deviceid", "devicekey", "keynumber", "commonkey")
		keyDevice, keyNumber := out["deviceid"].(string), out["keynumber"].(string)
		kdev := func(s, number string) string {
			s = strings.ReplaceAll(printed(s, keyid, key), `"deviceid": "0000000001"`, `"deviceid": "`+keyDevice+`"`)
			s = strings.ReplaceAll(s, `"devicename": "nec-edge-0001"`, `"devicename": "device01"`)
			return strings.ReplaceAll(s, `"keynumber": "66"`, `"keynumber": "`+number+`"`)
		}

		// Table 5-3: get it.
		out = r.mustCall(t, "POST", clm.PathKeyInfo, kdev(`{ "mode": "get", "keyid": "0000000001", "key": "cGFzc3dv", "deviceid": "0000000001",
	  "devicename": "nec-edge-0001", "keynumber": "66", "filepath": "/etc/opt/nec/swclm/keyfile/cmkey" }`, keyNumber), 200, 0)
		hasFields(t, "5-4", out, "errorcode", "alias", "expiration", "deviceid", "keynumber", "commonkey")

		// Table 5-5: update it (AES 128).
		out = r.mustCall(t, "POST", clm.PathKeyInfo, kdev(`{ "mode": "update", "keyid": "0000000001", "key": "cGFzc3dv", "deviceid": "0000000001",
	  "devicename": "nec-edge-0001", "keynumber": "66", "filepath": "/etc/opt/nec/swclm/keyfile/cmkey", "keylength": "128",
	  "newfilepath": "/etc/opt/nec/swclm/keyfile/cmkey_upd" }`, keyNumber), 200, 0)
		hasFields(t, "5-6", out, "errorcode", "alias", "expiration", "deviceid", "keynumber", "commonkey")
		newNumber, commonKey := out["keynumber"].(string), out["commonkey"].(string)

		// Table 5-7 (its missing comma restored): delete the new key with its value.
		body := kdev(`{ "mode": "delete", "keyid": "0000000001", "key": "cGFzc3dv", "deviceid": "0000000001", "devicename": "nec-edge-0001",
	  "keynumber": "66", "filepath": "/etc/opt/nec/swclm/keyfile/cmkey", "commonkey": "3Q1EmpN9ItHBCKkWkaRASA==" }`, newNumber)
		out = r.mustCall(t, "POST", clm.PathKeyInfo, strings.ReplaceAll(body, "3Q1EmpN9ItHBCKkWkaRASA==", commonKey), 200, 0)
		hasFields(t, "5-8", out, "errorcode", "deviceid", "keynumber")

		// Table 3-6: delete the ID.
		out = r.mustCall(t, "POST", clm.PathIDInfo, printed(`{ "mode": "delete", "keyid": "00000000001", "key": "cGFzc3dv" }`, keyid, key), 200, 0)
		hasFields(t, "3-7", out, "errorcode", "keyid")
		r.mustCall(t, "POST", clm.PathIDInfo, printed(`{ "mode": "auth", "keyid": "00000000001", "key": "cGFzc3dv" }`, keyid, key), 404, 1204)

		// Table 6-1 for a server whose store answers.
		out = r.mustCall(t, "GET", clm.PathSystemStatus, "", 200, 0)
		hasFields(t, "6-1", out, "errorcode")
	})
}

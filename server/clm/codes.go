// Package clm is the reference implementation of NEC SecureWare/Credential Lifecycle Manager's
// WebAPI: pre-shared IDs and passwords (IDInfo), X.509 certificates from the CLM's CA (CredInfo),
// symmetric keys (KeyInfo) and the server's status (SystemStatus), with license-key (HTTP Basic)
// and ID/password authentication, devices and tenancy by keyid.
package clm

import (
	"fmt"
	"maps"
)

// Error is a refused request: an errorcode of the document's appendix 7.1 and the HTTP status
// that table gives it.
type Error struct {
	Code   int
	Status int
	Detail string // for logs, never in the answer
}

func (e *Error) Error() string { return fmt.Sprintf("clm: errorcode %d: %s", e.Code, e.Detail) }

// codeTable maps each errorcode of the document's appendix 7.1 to the HTTP status the table
// gives it. (vectors/clm-errorcodes.json holds the same table as test data; a test compares the
// two.)
var codeTable = map[int]int{
	// 400
	1101: 400, 1102: 400, 1103: 400, 1104: 400, 1507: 400, 1508: 400, 1701: 400, 1702: 400,
	// 403
	1201: 403, 1202: 403, 1203: 403, 1304: 403, 1305: 403, 1306: 403, 1307: 403, 1308: 403,
	1504: 403, 1505: 403, 1506: 403, 1703: 403, 1704: 403, 1705: 403,
	// 404
	1204: 404, 1301: 404, 1302: 404, 1303: 404, 1309: 404, 1501: 404, 1502: 404, 1503: 404,
	1706: 404,
	// 500
	1001: 500, 1002: 500, 1205: 500, 1401: 500, 1402: 500, 1403: 500, 1601: 500, 1602: 500,
	1603: 500, 1604: 500, 1707: 500, 1901: 500, 2001: 500, 2002: 500, 2003: 500, 2004: 500,
	9901: 500,
}

// Codes returns the errorcode table: code → HTTP status.
func Codes() map[int]int { return maps.Clone(codeTable) }

// fail returns the refusal with code.
func fail(code int, detail string, args ...any) *Error {
	status, ok := codeTable[code]
	if !ok {
		panic(fmt.Sprintf("clm: errorcode %d is not in the table", code))
	}
	return &Error{Code: code, Status: status, Detail: fmt.Sprintf(detail, args...)}
}

// The error codes the server answers by name.
const (
	codeJSON           = 1101 // JSON syntax error
	codeRequired       = 1102 // a required parameter is missing
	codeParameter      = 1103 // a parameter's value is not one of those allowed
	codeLength         = 1104 // a parameter exceeds its maximum length
	codePassword       = 1201 // password mismatch
	codeIDStatus       = 1202 // the ID is not valid
	codeIDExpired      = 1203 // the ID has expired
	codeIDNotFound     = 1204 // no such ID
	codeIDOverflow     = 1205 // keyid exceeds its maximum
	codeCertNotFound   = 1301
	codeCAType         = 1302
	codeCertBinding    = 1303
	codeCertStatus     = 1304
	codeCertExpired    = 1305
	codeCertRevoked    = 1306
	codeNewCertStatus  = 1307
	codeNewCertExpired = 1308
	codeKeyNotFound    = 1501
	codeNewKeyNotFound = 1502
	codeKeyBinding     = 1503
	codeKeyUpdated     = 1504
	codeNewKeyStatus   = 1505
	codeNewKeyExpired  = 1506
	codeKeyTypeDiffers = 1507
	codeCommonKey      = 1508
	codeDBConnection   = 1601
	codeDBAccess       = 1602
	codeDeviceID       = 1701
	codeDeviceName     = 1702
	codeDeviceKey      = 1703
	codeDeviceStatus   = 1704
	codeDeviceExpired  = 1705
	codeDeviceNotFound = 1706
	codeEncryption     = 2002
	codeDecryption     = 2003
	codeSystem         = 9901
)

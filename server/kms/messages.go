package kms

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/shekit/shekit/openapi/kmswire"
)

// ProvisioningType is the kind of key a request is about (the contract's type).
type ProvisioningType = kmswire.ProvisioningType

// The provisioning types. The document's spelling "SecOckKey" is a typo and is not accepted.
const (
	EcuMasterKey    = kmswire.EcuMasterKey
	SupplierSymmKey = kmswire.SupplierSymmKey
	SecOCKey        = kmswire.SecOCKey
)

var provisioningTypes = map[string]ProvisioningType{
	string(EcuMasterKey): EcuMasterKey, string(SupplierSymmKey): SupplierSymmKey, string(SecOCKey): SecOCKey,
}

// Reason is a ResultReason: the stable identifier of why a request failed.
type Reason string

// problem is one row of the message table.
type problem struct {
	status int    // HTTP status
	format string // ResultMessage, with %s for the values the message quotes
}

// problems is the one table of every ResultMessage the KMS answers. The first six are the OEM
// document's messages, character for character ("registerd" included); the others are for
// conditions the document does not cover, in its style.
var problems = map[Reason]problem{
	"FIELD_REQUIRED":            {http.StatusOK, "The %s is required."},
	"NOT_REGISTERED":            {http.StatusOK, "The %s is not registerd."},
	"KEYID_PARSE":               {http.StatusOK, "keyID Parsing Err : %s"},
	"KEYID_RANGE":               {http.StatusOK, "The KeyID must be less than or equal to D(0x0D)."},
	"PHASE_INVALID":             {http.StatusOK, "Phase = ([Prod] or [Dev]): %s"},
	"SECRET_NOT_REGISTERED":     {http.StatusOK, "The SupplierSecretKey:%s is not registerd."},
	"PROVISIONING_TYPE_INVALID": {http.StatusOK, "ProvisioningType = ([EcuMasterKey] or [SupplierSymmKey] or [SecOCKey]): %s"},
	"KEYID_NOT_FOR_TYPE":        {http.StatusOK, "The KeyID of %s must be %s."},
	"KEYID_NOT_ALLOWED":         {http.StatusOK, "The KeyID:%s is not allowed for the EcuType %s."},
	"CLUSTER_NOT_ALLOWED":       {http.StatusOK, "The ClusterID:%s is not allowed for the EcuType %s."},
	"PHASE_NOT_ALLOWED":         {http.StatusOK, "The Phase:%s is not allowed for the supplier %s."},
	"ECUID_FORMAT":              {http.StatusOK, "The EcuID must be 54 hex characters: %s"},
	"RESULT_STATUS_INVALID":     {http.StatusOK, "ResultStatus = ([Success] or [OperationFailed]): %s"},
	"NOTHING_ISSUED":            {http.StatusOK, "The %s of KeyID %s is not issued."},
	"NOT_INJECTED":              {http.StatusOK, "The %s of KeyID %s is not injected."},
	"COUNTER_PARSE":             {http.StatusOK, "Counter Parsing Err : %s"},
	"COUNTER_EXHAUSTED":         {http.StatusOK, "The Counter must be less than or equal to FFFFFFF(268435455)."},
	"CHALLENGE_FORMAT":          {http.StatusOK, "The Challenge must be 32 hex characters: %s"},
	"KEYSYNC_MISMATCH":          {http.StatusOK, "The GET_ID MAC does not match the %s of KeyID %s."},
	"FORBIDDEN":                 {http.StatusOK, "The EcuID:%s does not belong to the supplier %s."},
	"UNAUTHORIZED":              {http.StatusUnauthorized, "The supplier is not authenticated."},
	"NOT_JSON":                  {http.StatusBadRequest, "The request body is not JSON."},
	"INTERNAL":                  {http.StatusInternalServerError, "Internal error."},
}

// Reasons lists every ResultReason in the table, sorted.
func Reasons() []Reason {
	rs := make([]Reason, 0, len(problems))
	for r := range problems {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	return rs
}

// Error is a request the KMS refuses: answered with ResultStatus OperationFailed.
type Error struct {
	Reason  Reason
	Message string
	Status  int // HTTP status
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Message }

// fail returns the refusal for reason, quoting args in its message.
func fail(reason Reason, args ...any) *Error {
	p, ok := problems[reason]
	if !ok {
		panic("kms: no message for reason " + string(reason))
	}
	return &Error{Reason: reason, Message: fmt.Sprintf(p.format, args...), Status: p.status}
}
